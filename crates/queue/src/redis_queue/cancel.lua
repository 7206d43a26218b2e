-- Cancels a pending task: gives it its final "cancelled" state, atomically
-- with the check that it has none yet. The stream entry is left alone: a
-- worker that reads it sees the final state (settled.lua) and retires it
-- without running it, and a worker running it stops when it next asks.
--
-- KEYS[1]  the task's state key    ({prefix}:task:{id})
-- ARGV[1]  the cancelled state, JSON ({"state":"done",...})
-- ARGV[2]  the state's TTL in milliseconds
--
-- Returns {0} for an unknown (or expired) task, {1} when it was cancelled
-- now, {2, state} when it already had a final state, which is unchanged.
local current = redis.call('GET', KEYS[1])
if not current then
  return {0}
end
if string.sub(current, 1, 15) == '{"state":"done"' then
  return {2, current}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
-- Wake the task's waiters (see complete.lua).
local prefix, id = string.match(KEYS[1], '^(.*):task:([^:]*)$')
if prefix then
  redis.call('PUBLISH', prefix .. ':done:' .. id, 'done')
end
return {1}
