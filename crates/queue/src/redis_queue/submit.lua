-- Records a task as pending and enqueues its job, atomically: a task is never
-- visible without its job, nor the reverse. Refuses new work when the stream
-- already holds the maximum number of unfinished jobs (backpressure), or when
-- the submitting client already has its maximum (fair share), in the same
-- step, so the checks cost no extra round trip and cannot race.
--
-- KEYS[1]  the task's state key    ({prefix}:task:{id})
-- KEYS[2]  the job stream          ({prefix}:jobs)
-- KEYS[3]  with a client cap: the client's unfinished tasks, a sorted set
--          of task ids scored by when their pending state expires
--          ({prefix}:client:{client})
-- ARGV[1]  the pending state, JSON ({"state":"pending","owner":...,"client":...})
-- ARGV[2]  the state's TTL in milliseconds
-- ARGV[3]  the task id             (stream field "id")
-- ARGV[4]  the job, JSON           (stream field "job")
-- ARGV[5]  the maximum queue length; 0 for none
-- ARGV[6]  the client's cap of unfinished jobs; 0 for none
-- ARGV[7]  now, in milliseconds since the Unix epoch
--
-- The stream holds exactly the unfinished jobs (complete.lua deletes each
-- finished entry), so XLEN, which is O(1), is the number of jobs waiting or
-- running. A client's set loses a task when it gets its final state
-- (complete.lua, cancel.lua) or, should that never happen, when its pending
-- state would have expired; the set itself expires with its newest member.
--
-- Returns the new stream entry id; false when the task id is already known
-- (a retried submit must not queue the job a second time); -1 when the queue
-- is full, -2 when the client is at its cap, and nothing was written.
local cap = tonumber(ARGV[6])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[7])
  if redis.call('ZCARD', KEYS[3]) >= cap then
    if redis.call('EXISTS', KEYS[1]) == 1 then
      return false
    end
    return -2
  end
end
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
if cap > 0 then
  redis.call('ZADD', KEYS[3], tonumber(ARGV[7]) + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 'job', ARGV[4])
