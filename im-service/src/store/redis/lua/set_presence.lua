-- KEYS: presence, blocks, contacts. ARGV: status, ttl ms. A user's activity keeps their blocks
-- alive. Returns {1, watchers...} when the status changed (no record counts as offline): the
-- contacts the user does not block, who are told of it; {0} otherwise.
local before = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'GET') or 'offline'
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if before == ARGV[1] then return {0} end
local reply = {1}
for _, contact in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if not redis.call('ZSCORE', KEYS[2], contact) then reply[#reply + 1] = contact end
end
return reply
