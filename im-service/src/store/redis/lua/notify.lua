-- KEYS: the user's event stream, the user's event marks (sorted set). ARGV: user, event JSON,
-- events kept, ttl ms, channel, now ms, this event's mark. Appends and publishes the event
-- once: a retried fan-out finds its mark and writes nothing. Marks outnumber the events kept
-- twice over, so a retry comes long before its mark goes.
if redis.call('ZADD', KEYS[2], 'NX', ARGV[6], ARGV[7]) == 0 then return 0 end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -2 * tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
append_event(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1
