-- Takes, or renews, a lease on one of a user's connection slots.
-- KEYS: the user's lease set (a sorted set of holders scored by expiry, ms).
-- ARGV: holder, limit, now (ms), lease (ms).
-- Returns {granted (0 or 1), leases held after it}.
local set, holder, limit = KEYS[1], ARGV[1], tonumber(ARGV[2])
local now, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
local granted = 0
if redis.call('ZSCORE', set, holder) or redis.call('ZCARD', set) < limit then
  granted = 1
  redis.call('ZADD', set, now + lease, holder)
  redis.call('PEXPIRE', set, lease)
end
return {granted, redis.call('ZCARD', set)}
