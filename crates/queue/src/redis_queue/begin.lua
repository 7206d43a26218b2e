-- A worker starts a delivered task: unless the task already has a final
-- state, marks it running; if it has one (cancelled while queued, or
-- finished by an earlier delivery), retires its stream entry instead, and
-- the job must not run. One round trip at a job's start, where the check
-- at reservation and the running mark were two; and off the path to the
-- job's start: the worker runs the job meanwhile and stops it if told so.
--
-- KEYS[1]  the job stream      ({prefix}:jobs)
-- KEYS[2]  the task state key  ({prefix}:task:{id})
-- KEYS[3]  the running mark    ({prefix}:running:{id})
-- ARGV[1]  the consumer group
-- ARGV[2]  the stream entry id delivering the task
-- ARGV[3]  when the job started (ms since the epoch)
-- ARGV[4]  the running mark's expiry (ms)
--
-- A final state is the JSON of TaskState::Done, told apart by its prefix as
-- settled.lua does. Returns 1 when the state is final (entry retired), 0
-- when the task was marked running.
local current = redis.call('GET', KEYS[2])
if current and string.sub(current, 1, 15) == '{"state":"done"' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
  return 1
end
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
return 0
