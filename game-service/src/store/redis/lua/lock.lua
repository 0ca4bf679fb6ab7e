-- Take one player's arbiter lock (or extend our own) and read, under it, the
-- player's record, any transaction intent left in the player's slot and the
-- sessions the player hosts (they live in the same slot).
-- KEYS[1] lock, KEYS[2] player record, KEYS[3] intent, KEYS[4..] sessions;
-- ARGV[1] token, ARGV[2] lease ms.
-- Returns {0} when another transition holds the lock, else
-- {1, record or '', intent or '', session or '' per session...}.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return {0}
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local out = {1, redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[3]) or ''}
for i = 4, #KEYS do
  out[#out + 1] = redis.call('GET', KEYS[i]) or ''
end
return out
