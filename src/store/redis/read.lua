-- Reads a user's stream after a position, with its epoch, head and oldest retained position;
-- starts the stream (empty) if it does not exist.
-- KEYS: meta, stream.
-- ARGV: after, limit, fresh epoch, now (ms), capacity, max age (ms), ttl (ms).
-- Returns {epoch, head, first, {{seq, payload}, ...}}.
local meta, stream = KEYS[1], KEYS[2]
local after, limit, fresh, now = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local capacity, max_age, ttl = ARGV[5], tonumber(ARGV[6]), ARGV[7]

local epoch = open_stream(meta, stream, fresh, ttl)
local head = tonumber(redis.call('HGET', meta, 'head'))

redis.call('XTRIM', stream, 'MAXLEN', capacity)
local cutoff = now - max_age
while true do
  local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  if #oldest == 0 or tonumber(oldest[1][2][4]) >= cutoff then break end
  redis.call('XDEL', stream, oldest[1][1])
end

local first = head + 1
local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
if #oldest > 0 then
  first = tonumber(string.match(oldest[1][1], '^(%d+)'))
end
local out = {}
if limit > 0 then
  local entries = redis.call('XRANGE', stream, '(' .. after .. '-0', '+', 'COUNT', limit)
  for _, e in ipairs(entries) do
    table.insert(out, {tonumber(string.match(e[1], '^(%d+)')), e[2][2]})
  end
end
return {epoch, head, first, out}
