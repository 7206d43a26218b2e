-- Records a task as pending and enqueues its job, atomically: a task is never
-- visible without its job, nor the reverse. Refuses new work when the stream
-- already holds the maximum number of unfinished jobs (backpressure), in the
-- same step, so the check costs no extra round trip and cannot race.
--
-- KEYS[1]  the task's state key    ({prefix}:task:{id})
-- KEYS[2]  the job stream          ({prefix}:jobs)
-- ARGV[1]  the pending state, JSON
-- ARGV[2]  the state's TTL in milliseconds
-- ARGV[3]  the task id             (stream field "id")
-- ARGV[4]  the job, JSON           (stream field "job")
-- ARGV[5]  the maximum queue length; 0 for none
--
-- The stream holds exactly the unfinished jobs (complete.lua deletes each
-- finished entry), so XLEN, which is O(1), is the number of jobs waiting or
-- running.
--
-- Returns the new stream entry id; false when the task id is already known
-- (a retried submit must not queue the job a second time); -1 when the queue
-- is full and nothing was written.
local max = tonumber(ARGV[5])
if max > 0 and redis.call('XLEN', KEYS[2]) >= max then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    return false
  end
  return -1
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
return redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 'job', ARGV[4])
