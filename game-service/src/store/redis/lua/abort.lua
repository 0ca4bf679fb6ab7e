-- Drop transaction ARGV[1]'s intent from this slot (it was never fully prepared).
-- KEYS[1] intent, KEYS[2] intent plan.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
end
return 1
