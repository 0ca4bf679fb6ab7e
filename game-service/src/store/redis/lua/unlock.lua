-- Release the locks in KEYS that ARGV[1] (the token) still holds.
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
  end
end
return 1
