-- KEYS: presence, blocks, contacts, presence_seq, activity; on a standalone server also the
-- user's feed shard stream and appended set. ARGV: status, ttl ms, now ms, most unfed changes
-- kept; with the feed keys also user id, feed entries kept, feed ttl ms. A user's activity
-- keeps their blocks alive. With the feed keys (one server: one script may touch them all) the
-- unfed changes are appended here, as append_feed.lua does, and unmarked at once: the reply
-- then lists none.
-- When the status changed (no record counts as offline), the change takes the next seq,
-- max(the previous change's + 1, now ms), kept in presence_seq as long as the presence, and is
-- marked unfed there (`p.<seq>` = "<status> <ms>") until the feed has it; the marks are
-- cleared after the append (a plain HDEL), the oldest dropped beyond the most kept.
-- Returns {changed (1/0), activity session, mode, since ('' when none), number of unfed
-- changes, then seq, status, at ms of each (oldest first), then the watchers}: the contacts
-- the user does not block, only when the status changed.
local before = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'GET') or 'offline'
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local changed = before ~= ARGV[1]
if changed then
  local previous = tonumber(redis.call('HGET', KEYS[4], 'seq') or '0')
  local seq = string.format('%d', math.max(previous + 1, tonumber(ARGV[3])))
  redis.call('HSET', KEYS[4], 'seq', seq, 'p.' .. seq, ARGV[1] .. ' ' .. ARGV[3])
end
redis.call('PEXPIRE', KEYS[4], ARGV[2])
local unfed = {}
local fields = redis.call('HGETALL', KEYS[4])
for i = 1, #fields, 2 do
  local seq = string.match(fields[i], '^p%.(%d+)$')
  if seq then unfed[#unfed + 1] = {tonumber(seq), seq, fields[i + 1]} end
end
table.sort(unfed, function(a, b) return a[1] < b[1] end)
while #unfed > tonumber(ARGV[4]) do
  redis.call('HDEL', KEYS[4], 'p.' .. unfed[1][2])
  table.remove(unfed, 1)
end
if KEYS[7] and #unfed > 0 then
  local appended = 0
  for _, entry in ipairs(unfed) do
    local status, at = string.match(entry[3], '^(%S+) (%d+)$')
    local last = redis.call('ZSCORE', KEYS[7], ARGV[5])
    if not last or entry[1] > tonumber(last) then
      redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[6], '*',
        'user_id', ARGV[5], 'status', status or '', 'seq', entry[2], 'at', at or '0')
      redis.call('ZADD', KEYS[7], entry[2], ARGV[5])
      appended = appended + 1
    end
    redis.call('HDEL', KEYS[4], 'p.' .. entry[2])
  end
  if appended > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[7], 0, -(tonumber(ARGV[6]) + 1))
    redis.call('PEXPIRE', KEYS[6], ARGV[7])
    redis.call('PEXPIRE', KEYS[7], ARGV[7])
  end
  unfed = {}
end
local activity = redis.call('HMGET', KEYS[5], 'session', 'mode', 'since')
local reply = {changed and 1 or 0, activity[1] or '', activity[2] or '', activity[3] or '', #unfed}
for _, entry in ipairs(unfed) do
  local status, at = string.match(entry[3], '^(%S+) (%d+)$')
  reply[#reply + 1] = entry[2]
  reply[#reply + 1] = status or ''
  reply[#reply + 1] = at or '0'
end
if changed then
  for _, contact in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if not redis.call('ZSCORE', KEYS[2], contact) then reply[#reply + 1] = contact end
  end
end
return reply
