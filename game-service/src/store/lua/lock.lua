-- Take a player's arbiter lock (or extend our own) and return the player's record.
-- KEYS[1] lock, KEYS[2] player record; ARGV[1] token, ARGV[2] lease in ms.
-- Returns {0} when another transition holds the lock, {1} or {1, record} when taken.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return {0}
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local record = redis.call('GET', KEYS[2])
if record then
  return {1, record}
end
return {1}
