-- Indexes a new conversation for a participant other than its creator, unless they block the
-- creator: then it stays out of their index (they never see it) and 0 is returned.
-- KEYS: convs, blocks. ARGV: conversation id, activity ms, ttl ms, prune-before ms, creator.
if redis.call('ZSCORE', KEYS[2], ARGV[5]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 0
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
