-- KEYS: meta, msgs. ARGV: after, limit. Returns {seq of the first returned, messages}: the kept
-- messages with a greater seq, oldest first.
local len = redis.call('LLEN', KEYS[2])
if len == 0 then return {0, {}} end
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or len)
local after = tonumber(ARGV[1])
if after >= last then return {0, {}} end
local first = last - len + 1
local from = math.max(after + 1, first)
local start = from - first
return {from, redis.call('LRANGE', KEYS[2], start, start + tonumber(ARGV[2]) - 1)}
