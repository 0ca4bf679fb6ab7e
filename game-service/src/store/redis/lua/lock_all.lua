-- Standalone Redis only: take every lock of a transition at once, all or none
-- (one round trip, and no transition ever holds some locks while waiting for
-- others), and read the players' records and the sessions they host under
-- those locks. With an actor, the lock set is first widened by what the
-- actor's record points at (the same prediction as `store::predict`), so the
-- transition needs no read beforehand. Key names are built here from the
-- prefix (a cluster takes locks per slot instead, with declared keys).
-- ARGV[1] token, ARGV[2] lease ms, ARGV[3] key prefix, ARGV[4] actor ('' for
-- none), ARGV[5] scope ('record', 'candidates', or 'if_open': as 'record', but
-- nothing is locked when the actor's record holds no prompt, session or
-- invitation), ARGV[6] n, then n player ids, then (session id, host) pairs.
-- Returns {2} for 'if_open' with nothing open, {0} when another transition
-- holds one of the locks, else
-- {1, #players, id, record or ''..., #sessions, id, session or ''...}.
local token, lease, prefix, actor, scope = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local n = tonumber(ARGV[6])

local function key(id, rest)
  return prefix .. ':{p.' .. id .. '}:' .. rest
end
local function present(v)
  return v ~= nil and v ~= cjson.null
end

local players, locking = {}, {}
local function add_player(id)
  if not locking[id] then
    locking[id] = true
    players[#players + 1] = id
  end
end
local sessions, listed = {}, {}
local function add_session(id, host)
  if not listed[id] then
    listed[id] = true
    sessions[#sessions + 1] = {id, host}
  end
end

for i = 1, n do
  add_player(ARGV[6 + i])
end
for i = 7 + n, #ARGV - 1, 2 do
  add_session(ARGV[i], ARGV[i + 1])
end

if actor ~= '' then
  add_player(actor)
  local raw = redis.call('GET', key(actor, 'player'))
  local record = raw and cjson.decode(raw)
  if scope == 'if_open' then
    -- The same test as `store::nothing_open`.
    local open = record and (present(record.prompt) or present(record.session)
      or (present(record.invitations) and #record.invitations > 0))
    if not open then
      return {2}
    end
  end
  if record then
    local function refer(at)
      if present(at) then
        add_player(at.host)
        add_session(at.id, at.host)
      end
    end
    refer(record.session)
    local prompt = record.prompt
    if present(prompt) then
      refer(prompt.lobby)
      if scope == 'candidates' and not present(prompt.lobby) then
        for _, candidate in ipairs(prompt.candidates) do
          add_player(candidate)
        end
      end
    end
    if present(record.invitations) then
      for _, invitation in ipairs(record.invitations) do
        refer(invitation.lobby)
      end
    end
  end
end

for _, id in ipairs(players) do
  local holder = redis.call('GET', key(id, 'lock'))
  if holder and holder ~= token then
    return {0}
  end
end
local out = {1, #players}
for _, id in ipairs(players) do
  redis.call('SET', key(id, 'lock'), token, 'PX', lease)
  out[#out + 1] = id
  out[#out + 1] = redis.call('GET', key(id, 'player')) or ''
end
-- A session is read only under its host's lock.
local hosted = {}
for _, at in ipairs(sessions) do
  if locking[at[2]] then
    hosted[#hosted + 1] = at
  end
end
out[#out + 1] = #hosted
for _, at in ipairs(hosted) do
  out[#out + 1] = at[1]
  out[#out + 1] = redis.call('GET', key(at[2], 'session:' .. at[1])) or ''
end
return out
