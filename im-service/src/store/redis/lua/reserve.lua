-- Takes (or keeps) a user's open-conversation slot for a conversation they open or answer,
-- and indexes it for them. KEYS: open, convs, contacts, blocks, and with an idempotency key
-- the user's record of it. ARGV: conversation id, activity ms, ttl ms, limit (0: only keep a
-- slot already held), prune-before ms, the request's fingerprint ('' without a key), the
-- conversation as opened (JSON; with a key), the key's ttl ms, n, n stale ids to drop first,
-- then contacts to add. Returns {status, answer}: 0, changing nothing else, when the slot is
-- new and the user is at the limit; 1 when taken or kept (without writing when there is no
-- slot to keep: the conversation was closed meanwhile), and then the key is recorded with
-- the conversation; with a key already recorded, nothing is written: 2 and the conversation
-- it opened when the fingerprint is the same, 3 when it is another.
local fingerprint = ARGV[6]
if fingerprint ~= '' then
  fingerprint = redis.sha1hex(fingerprint)
  local first = redis.call('HMGET', KEYS[5], 'fingerprint', 'answer')
  if first[1] then
    if first[1] == fingerprint then return {2, first[2]} end
    return {3, ''}
  end
end
local n = tonumber(ARGV[9])
for i = 10, 9 + n do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if tonumber(ARGV[4]) == 0 then return {1, ''} end
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return {0, ''} end
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
if #ARGV > 9 + n then redis.call('SADD', KEYS[3], unpack(ARGV, 10 + n)) end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
if fingerprint ~= '' then
  redis.call('HSET', KEYS[5], 'fingerprint', fingerprint, 'answer', ARGV[7])
  redis.call('PEXPIRE', KEYS[5], ARGV[8])
end
return {1, ''}
