-- Tells which tasks already have a final state, and retires the stream
-- entries of those that do: a cancelled task, or one another delivery
-- finished, must not run (again).
--
-- KEYS[1]      the job stream      ({prefix}:jobs)
-- KEYS[2..n]   task state keys     ({prefix}:task:{id})
-- ARGV[1]      the consumer group
-- ARGV[2..n]   the stream entry id delivering each task, or '' to only look
--
-- A final state is the JSON of TaskState::Done, which serde writes with its
-- tag first, so a prefix check tells it apart without decoding what may be a
-- megabyte of output. A missing state (expired) is not final: the job may
-- still run and its late result is kept, as complete.lua does.
--
-- Returns one integer per task: 1 when its state is final (and its entry, if
-- given, was acknowledged and deleted), 0 otherwise.
local settled = {}
for i = 2, #KEYS do
  local current = redis.call('GET', KEYS[i])
  local final = 0
  if current and string.sub(current, 1, 15) == '{"state":"done"' then
    final = 1
    if ARGV[i] ~= '' then
      redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
      redis.call('XDEL', KEYS[1], ARGV[i])
    end
  end
  settled[#settled + 1] = final
end
return settled
