-- Apply one transition (or, on a cluster, the part of it that lives in one slot)
-- atomically: check every fence, then write records, append + publish events,
-- schedule expiry jobs, clear the transaction's intent and release the locks.
-- ARGV[1] fence token; ARGV[2] plan (JSON) whose numbers index KEYS:
--   fences  {k}                 lock keys that must still hold the token
--   sets    {{k, value, ttl_ms, keep}} records to store (keep: never shorten
--                                the key's current lifetime)
--   extend  {{k, ttl_ms}}        existing keys that must live at least ttl_ms
--   events  {{k, player, json}}  stream appends (published on `channel`)
--   jobs    {{k, due_ms, job}}   expiry jobs (sorted sets)
--   unlock  {k}                 lock keys to release
--   marker  k or 0              "already applied" marker of a two-phase commit
--   intent  {k_intent, k_plan}  the intent to clear (two-phase commit), or {}
local token = ARGV[1]
local plan = cjson.decode(ARGV[2])
if plan.marker > 0 and redis.call('EXISTS', KEYS[plan.marker]) == 1 then
  return 2
end
local fenced = {}
for _, k in ipairs(plan.fences) do
  if redis.call('GET', KEYS[k]) ~= token then
    return redis.error_reply('LEASE_LOST a lock lease expired before the commit')
  end
  fenced[k] = true
end
for _, s in ipairs(plan.sets) do
  local ttl = s[3]
  if s[4] then
    local left = redis.call('PTTL', KEYS[s[1]])
    if left > ttl then
      ttl = left
    end
  end
  redis.call('SET', KEYS[s[1]], s[2], 'PX', ttl)
end
-- After the sets, so that a key written here is extended too (PEXPIRE GT
-- would do, but needs Redis 7).
for _, e in ipairs(plan.extend) do
  local left = redis.call('PTTL', KEYS[e[1]])
  if left >= 0 and left < e[2] then
    redis.call('PEXPIRE', KEYS[e[1]], e[2])
  end
end
for _, e in ipairs(plan.events) do
  append_event(KEYS[e[1]], e[2], e[3], plan.maxlen, plan.events_ttl, plan.channel)
end
for _, j in ipairs(plan.jobs) do
  redis.call('ZADD', KEYS[j[1]], j[2], j[3])
  redis.call('PEXPIRE', KEYS[j[1]], plan.jobs_ttl)
end
if #plan.intent == 2 and redis.call('GET', KEYS[plan.intent[1]]) == plan.tx then
  redis.call('DEL', KEYS[plan.intent[1]], KEYS[plan.intent[2]])
end
if plan.marker > 0 then
  redis.call('SET', KEYS[plan.marker], '1', 'PX', plan.marker_ttl)
end
for _, k in ipairs(plan.unlock) do
  -- A fenced lock is known to be ours: no need to read it again.
  if fenced[k] or redis.call('GET', KEYS[k]) == token then
    redis.call('DEL', KEYS[k])
  end
end
return 1
