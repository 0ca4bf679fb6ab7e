-- Was transaction ARGV[1] prepared in this slot? Yes if its intent is here, or
-- if its part here was already applied (the marker).
-- KEYS[1] intent, KEYS[2] marker.
if redis.call('GET', KEYS[1]) == ARGV[1] or redis.call('EXISTS', KEYS[2]) == 1 then
  return 1
end
return 0
