-- Cancels a pending task: gives it its final "cancelled" state, atomically
-- with the check that it has none yet. The stream entry is left alone: a
-- worker that reads it sees the final state (settled.lua) and retires it
-- without running it, and a worker running it stops when it next asks.
--
-- KEYS[1]  the task's state key    ({prefix}:task:{id})
-- ARGV[1]  the cancelled state, JSON ({"state":"done",...}), without an owner
-- ARGV[2]  the state's TTL in milliseconds
-- ARGV[3]  the owner asking; '' to ask as anyone
--
-- A task of another owner is unknown to the asker and is left alone. The
-- cancelled state keeps the task's owner, and the task leaves its client's
-- set of unfinished tasks (see submit.lua and complete.lua).
--
-- Returns {0} for an unknown (or expired, or another owner's) task, {1} when
-- it was cancelled now, {2, state} when it already had a final state, which
-- is unchanged.
local current = redis.call('GET', KEYS[1])
if not current then
  return {0}
end
local owner = string.match(current, '^{"state":"%a+","owner":"([^"]*)"')
if ARGV[3] ~= '' and owner and owner ~= ARGV[3] then
  return {0}
end
if string.sub(current, 1, 15) == '{"state":"done"' then
  return {2, current}
end
local state = ARGV[1]
if owner then
  state = '{"state":"done","owner":"' .. owner .. '",' .. string.sub(ARGV[1], 17)
end
redis.call('SET', KEYS[1], state, 'PX', ARGV[2])
local prefix, id = string.match(KEYS[1], '^(.*):task:([^:]*)$')
if prefix then
  local client = string.match(current, '^{"state":"pending"[^}]-,"client":"([^"]*)"')
  if client then
    redis.call('ZREM', prefix .. ':client:' .. client, id)
  end
  -- Wake the task's waiters (see complete.lua).
  redis.call('PUBLISH', prefix .. ':done:' .. id, 'done')
end
return {1}
