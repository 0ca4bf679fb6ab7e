-- KEYS: a presence feed shard's stream, its appended sorted set (user -> newest seq appended).
-- ARGV: entries kept, ttl ms, then 4 per change (one user's, oldest first): user, status, seq,
-- at ms. Appends each change unless a change of that user with the same or a newer seq is
-- there already (a repeat after an interruption, or an older change that lost a race with a
-- newer one), so that a user's changes are in the stream once each, in seq order. Trims the
-- stream (approximately) and the set to the entries kept, and refreshes both TTLs. Returns
-- how many were appended.
local appended = 0
for i = 3, #ARGV, 4 do
  local user, seq = ARGV[i], ARGV[i + 2]
  local last = redis.call('ZSCORE', KEYS[2], user)
  if not last or tonumber(seq) > tonumber(last) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
      'user_id', user, 'status', ARGV[i + 1], 'seq', seq, 'at', ARGV[i + 3])
    redis.call('ZADD', KEYS[2], seq, user)
    appended = appended + 1
  end
end
if appended > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[1]) + 1))
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return appended
