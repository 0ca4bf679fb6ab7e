-- Claim due expiry jobs: each claimed job's score moves to now + lease, so exactly
-- one caller gets it, and it is handed out again if that caller dies.
-- KEYS[1] jobs sorted set; ARGV[1] now ms, ARGV[2] lease ms, ARGV[3] limit.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local lease_until = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, job in ipairs(due) do
  redis.call('ZADD', KEYS[1], lease_until, job)
end
return due
