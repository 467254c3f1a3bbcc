-- Opens a user's stream for the script that follows (prepended to it): returns its epoch.
-- A stream is started again, empty, under the `fresh` epoch when it has no meta record, or
-- when its meta record was written under another lineage of this Redis: its replication id
-- changed (a replica was promoted, or the server restarted without persistence), so the
-- stream may have lost its newest writes, and continuing it would hand out again positions
-- some clients already read with other messages.
local function open_stream(meta, stream, fresh, ttl)
  local info = redis.call('INFO', 'replication')
  local lineage = string.match(info, 'master_replid:(%w+)') or ''
  local epoch = redis.call('HGET', meta, 'epoch')
  if epoch and redis.call('HGET', meta, 'lineage') == lineage then
    return epoch
  end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', fresh, 'head', 0, 'lineage', lineage)
  redis.call('PEXPIRE', meta, ttl)
  return fresh
end

