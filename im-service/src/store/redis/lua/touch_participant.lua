-- Moves a conversation's scores forward in a (non-sending) participant's indexes where it is
-- already listed, and re-adds contacts already earned. KEYS: convs, open, contacts.
-- ARGV: conversation id, activity ms, ttl ms, contacts...
redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', 'GT', ARGV[2], ARGV[1])
if #ARGV > 3 then redis.call('SADD', KEYS[3], unpack(ARGV, 4)) end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
