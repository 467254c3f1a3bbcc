-- Appends one message to a user's stream: the next position, atomically, with the epoch.
-- KEYS: meta, stream, idempotency key.
-- ARGV: payload, fresh epoch, now (ms), capacity, max age (ms), ttl (ms), live channel.
-- Returns {epoch, seq, duplicate (0 or 1)}.
local meta, stream, idem = KEYS[1], KEYS[2], KEYS[3]
local payload, fresh, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local capacity, max_age, ttl, channel = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]

local epoch = open_stream(meta, stream, fresh, ttl)

local seen = redis.call('GET', idem)
if seen then
  local sep = string.find(seen, ' ', 1, true)
  if sep and string.sub(seen, 1, sep - 1) == epoch then
    return {epoch, tonumber(string.sub(seen, sep + 1)), 1}
  end
end

local head = redis.call('HINCRBY', meta, 'head', 1)
redis.call('XADD', stream, head .. '-0', 'p', payload, 't', ARGV[3])
redis.call('XTRIM', stream, 'MAXLEN', capacity)
local cutoff = now - max_age
while true do
  local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  if #oldest == 0 or tonumber(oldest[1][2][4]) >= cutoff then break end
  redis.call('XDEL', stream, oldest[1][1])
end
redis.call('SET', idem, epoch .. ' ' .. head, 'PX', ttl)
redis.call('PEXPIRE', meta, ttl)
redis.call('PEXPIRE', stream, ttl)
redis.call('PUBLISH', channel, epoch .. ' ' .. head .. ' ' .. payload)
return {epoch, head, 0}
