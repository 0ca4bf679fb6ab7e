-- List a two-phase transaction for the sweep that finishes it should its
-- writer die: a member of this job shard's sorted set of intents, scored by
-- when it was prepared. Every key has a TTL: the set outlives the intents.
-- KEYS[1] the shard's intents; ARGV[1] prepared at (ms), ARGV[2] member,
-- ARGV[3] ttl ms.
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
