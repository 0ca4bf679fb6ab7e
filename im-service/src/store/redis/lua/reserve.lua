-- Takes (or keeps) a user's open-conversation slot for a conversation they open or answer,
-- and indexes it for them. KEYS: open, convs, contacts, blocks. ARGV: conversation id, activity
-- ms, ttl ms, limit (0: only keep a slot already held), prune-before ms, n, n stale ids to drop
-- first, then contacts to add. Returns 0, changing nothing else, when the slot is new and the
-- user is at the limit; 1 without writing when there is no slot to keep (it was freed: the
-- conversation was closed meanwhile).
local n = tonumber(ARGV[6])
for i = 7, 6 + n do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if tonumber(ARGV[4]) == 0 then return 1 end
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
if #ARGV > 6 + n then redis.call('SADD', KEYS[3], unpack(ARGV, 7 + n)) end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
