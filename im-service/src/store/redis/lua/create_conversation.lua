-- KEYS: meta. ARGV: participants (comma-separated), created ms, ttl ms, hidden (comma-separated).
-- Creates only: a retry after a lost reply must not reset a conversation someone already uses.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'participants', ARGV[1], 'created', ARGV[2], 'closed', '0',
  'hidden', ARGV[4], 'posters', '', 'seq', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
