-- Appends one event to a user's stream (keeping about `maxlen`, for `ttl_ms` after the newest)
-- and publishes it to every replica as the StoredEvent JSON; returns its id. Prepended to the
-- services' scripts that append events (service_kit::events::redis::with_append_event).
local function append_event(stream, player, json, maxlen, ttl_ms, channel)
  local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', json)
  redis.call('PEXPIRE', stream, ttl_ms)
  -- Built by concatenation: cjson would turn empty arrays into objects.
  redis.call('PUBLISH', channel,
    '{"player":"' .. player .. '","id":"' .. id .. '","event":' .. json .. '}')
  return id
end
