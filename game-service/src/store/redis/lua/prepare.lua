-- Two-phase commit, phase one, in one locked player's slot: record the intent
-- (the whole plan) while the lock is still ours.
-- KEYS[1] lock, KEYS[2] intent, KEYS[3] intent plan; ARGV[1] token, ARGV[2] tx id,
-- ARGV[3] plan, ARGV[4] ttl ms.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LEASE_LOST a lock lease expired before the commit')
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
return 1
