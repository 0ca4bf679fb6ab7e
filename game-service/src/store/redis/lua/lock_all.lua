-- Take every lock of a transition at once, all or none (standalone Redis: one
-- round trip, and no transition ever holds some locks while waiting for others),
-- and read the players' records and the sessions they host under those locks.
-- KEYS: per player its lock then its record (2 * ARGV[3] keys), then session keys.
-- ARGV[1] token, ARGV[2] lease ms, ARGV[3] number of players.
-- Returns {0} when another transition holds one of the locks, else
-- {1, record or '' per player..., session or '' per session...}.
local token, lease, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 1, n do
  local holder = redis.call('GET', KEYS[2 * i - 1])
  if holder and holder ~= token then
    return {0}
  end
end
local out = {1}
for i = 1, n do
  redis.call('SET', KEYS[2 * i - 1], token, 'PX', lease)
  out[#out + 1] = redis.call('GET', KEYS[2 * i]) or ''
end
for i = 2 * n + 1, #KEYS do
  out[#out + 1] = redis.call('GET', KEYS[i]) or ''
end
return out
