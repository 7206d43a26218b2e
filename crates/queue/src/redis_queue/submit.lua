-- Records a task as pending and enqueues its job, atomically: a task is never
-- visible without its job, nor the reverse.
--
-- KEYS[1]  the task's state key    ({prefix}:task:{id})
-- KEYS[2]  the job stream          ({prefix}:jobs)
-- ARGV[1]  the pending state, JSON
-- ARGV[2]  the state's TTL in milliseconds
-- ARGV[3]  the task id             (stream field "id")
-- ARGV[4]  the job, JSON           (stream field "job")
--
-- Returns the new stream entry id, or false when the task id is already known:
-- a retried submit must not queue the job a second time.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
return redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 'job', ARGV[4])
