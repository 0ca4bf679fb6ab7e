-- KEYS: meta, msgs. ARGV: ttl ms. Returns the closed conversation's hash, empty when missing,
-- with a field `newly_closed` ("1" when this call closed it, "0" when it was closed already).
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local newly = '1'
if redis.call('HGET', KEYS[1], 'closed') == '1' then newly = '0' end
redis.call('HSET', KEYS[1], 'closed', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
local hash = redis.call('HGETALL', KEYS[1])
hash[#hash + 1] = 'newly_closed'
hash[#hash + 1] = newly
return hash
