-- KEYS: meta, msgs, games, and with an idempotency key the sender's record of it. ARGV:
-- message JSON, activity ms, ttl ms, append id, messages kept, sender, "1" for people's talk
-- or "0" for a service's announcement, the announced game session id ('' for talk), the
-- request's fingerprint ('' without a key), the key's ttl ms. Appends, drops the oldest
-- beyond the kept count, records the sender as a poster and moves the last activity (talk
-- only), at once. Returns {seq, stored JSON, posters, 1 if the sender posts here for the first
-- time}; seq -1 when missing, -2 when closed. Replaying the same append id (a retry after a
-- dropped connection) returns the first result instead of appending twice. A key already
-- recorded appends nothing, closed or not: it returns its message (seq, JSON, whether it was
-- the sender's first) when the fingerprint is the same, seq -3 when it is another; a new key
-- is recorded with the message it appends. An announcement of a session already announced
-- here (the game service retrying after a lost answer) appends nothing, closed or not, and
-- returns the first one's seq and JSON ('' once it was trimmed); `games` remembers as many
-- sessions as messages are kept.
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, '', '', 0} end
local posters = redis.call('HGET', KEYS[1], 'posters') or ''
-- The JSON kept at `seq`, or '' when it was trimmed.
local function kept(seq)
  local last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
  local index = redis.call('LLEN', KEYS[2]) - 1 - (last - seq)
  if index < 0 then return '' end
  return redis.call('LINDEX', KEYS[2], index) or ''
end
if redis.call('HGET', KEYS[1], 'append_id') == ARGV[4] then
  local seq = tonumber(redis.call('HGET', KEYS[1], 'append_seq'))
  return {seq, kept(seq), posters, tonumber(redis.call('HGET', KEYS[1], 'append_newly') or '0')}
end
local fingerprint = ARGV[9]
if fingerprint ~= '' then
  fingerprint = redis.sha1hex(fingerprint)
  local first = redis.call('HMGET', KEYS[4], 'fingerprint', 'seq', 'message', 'newly')
  if first[1] then
    if first[1] ~= fingerprint then return {-3, '', '', 0} end
    return {tonumber(first[2]), first[3], posters, tonumber(first[4])}
  end
end
local session = ARGV[8]
if session ~= '' then
  local announced = redis.call('ZSCORE', KEYS[3], session)
  if announced then
    local seq = tonumber(announced)
    return {seq, kept(seq), posters, 0}
  end
end
if redis.call('HGET', KEYS[1], 'closed') == '1' then return {-2, '', '', 0} end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or redis.call('LLEN', KEYS[2])) + 1
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
local talk = ARGV[7] == '1'
local active = redis.call('HGET', KEYS[1], 'active')
if talk and ((not active) or tonumber(active) < tonumber(ARGV[2])) then
  redis.call('HSET', KEYS[1], 'active', ARGV[2])
end
local newly = 0
if talk and not string.find(',' .. posters .. ',', ',' .. ARGV[6] .. ',', 1, true) then
  if posters == '' then posters = ARGV[6] else posters = posters .. ',' .. ARGV[6] end
  newly = 1
end
redis.call('HSET', KEYS[1], 'seq', seq, 'posters', posters, 'append_id', ARGV[4],
  'append_seq', seq, 'append_newly', newly)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if session ~= '' then
  redis.call('ZADD', KEYS[3], seq, session)
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[5]) - 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
if fingerprint ~= '' then
  redis.call('HSET', KEYS[4], 'fingerprint', fingerprint, 'seq', seq, 'message', ARGV[1],
    'newly', newly)
  redis.call('PEXPIRE', KEYS[4], ARGV[10])
end
return {seq, ARGV[1], posters, newly}
