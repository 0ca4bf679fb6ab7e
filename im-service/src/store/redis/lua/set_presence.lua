-- KEYS: presence, blocks. ARGV: status, ttl ms. A user's activity keeps their blocks alive.
-- Returns 1 when the status changed (no record counts as offline), else 0.
local before = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'GET') or 'offline'
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if before == ARGV[1] then return 0 end
return 1
