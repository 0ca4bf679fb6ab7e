-- KEYS: blocks. ARGV: blocked user, ttl ms.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
