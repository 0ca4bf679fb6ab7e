-- KEYS: activity, presence, contacts, blocks (one user's). ARGV: ttl ms, then 5 per report, in
-- seq order: seq, playing (1/0), session, mode, at ms.
-- Applies each report whose seq is newer than the newest applied (seqs are compared as the
-- decimal strings they are, exactly, whatever their size): playing sets the activity to that
-- session since `at`; not playing clears it, whatever its session (a user plays one session
-- at a time and seq orders their reports: the newest is the truth). Either way the report's
-- seq becomes the newest applied, and the key lives `ttl` from then. Returns {status, number
-- of changes, then session, mode, since of each ('' when cleared), then the watchers}: the
-- contacts the user does not block, only when something changed.
local function newer(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local record = redis.call('HMGET', KEYS[1], 'seq', 'session', 'mode', 'since')
local seq, session, mode, since = record[1] or '0', record[2], record[3], record[4]
local applied = false
local changes = {}
for i = 2, #ARGV, 5 do
  local r_seq, playing, r_session, r_mode, r_at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if newer(r_seq, seq) then
    seq = r_seq
    applied = true
    if playing == '1' then
      if session ~= r_session or mode ~= r_mode or since ~= r_at then
        session, mode, since = r_session, r_mode, r_at
        changes[#changes + 1] = {session, mode, since}
      end
    elseif session then
      session, mode, since = false, false, false
      changes[#changes + 1] = {'', '', ''}
    end
  end
end
if applied then
  redis.call('HSET', KEYS[1], 'seq', seq)
  if session then
    redis.call('HSET', KEYS[1], 'session', session, 'mode', mode, 'since', since)
  else
    redis.call('HDEL', KEYS[1], 'session', 'mode', 'since')
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local reply = {redis.call('GET', KEYS[2]) or 'offline', #changes}
for _, change in ipairs(changes) do
  reply[#reply + 1] = change[1]
  reply[#reply + 1] = change[2]
  reply[#reply + 1] = change[3]
end
if #changes > 0 then
  for _, contact in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if not redis.call('ZSCORE', KEYS[4], contact) then reply[#reply + 1] = contact end
  end
end
return reply
