-- KEYS: the watcher's event stream, the watcher's blocks. ARGV: watcher, event JSON, events
-- kept, ttl ms, channel, the user whose presence changed. Appends and publishes the event
-- unless the watcher blocks that user (checked here, in the watcher's slot).
if redis.call('ZSCORE', KEYS[2], ARGV[6]) then return 0 end
append_event(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1
