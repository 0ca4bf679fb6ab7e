-- KEYS: blocks. ARGV: blocked user, at ms, ttl ms, limit. Returns 0 blocked, 1 already
-- blocked (its time kept), -1 at the limit (nothing changed).
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return -1 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
