-- KEYS: presence, blocks. ARGV: status, ttl ms. A user's activity keeps their blocks alive.
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
