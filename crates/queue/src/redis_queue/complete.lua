-- Stores a task's final state and retires its stream entry, atomically.
--
-- KEYS[1]  the task's state key    ({prefix}:task:{id})
-- KEYS[2]  the job stream          ({prefix}:jobs)
-- ARGV[1]  the consumer group
-- ARGV[2]  the stream entry id of the delivery
-- ARGV[3]  the final state, JSON   ({"state":"done",...})
-- ARGV[4]  the state's TTL in milliseconds
--
-- The first final state wins: when the stored state is already "done" (the job
-- was delivered twice and the other run finished first) it is kept. A missing
-- state (expired while the job waited) is written anyway, since a late result
-- is still worth keeping. The entry is acknowledged and deleted either way, so
-- the stream holds only unfinished jobs and does not grow without bound.
--
-- Waiters (GET /results?wait, POST /run-code?wait) are told on the channel
-- {prefix}:done:{id}, named after KEYS[1], in the same atomic step.
--
-- Returns 1 when the state was written, 0 when an earlier final state was kept.
local written = 0
local current = redis.call('GET', KEYS[1])
local already_done = false
if current then
  local ok, decoded = pcall(cjson.decode, current)
  already_done = ok and type(decoded) == 'table' and decoded.state == 'done'
end
if not already_done then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  written = 1
  local prefix, id = string.match(KEYS[1], '^(.*):task:([^:]*)$')
  if prefix then
    redis.call('PUBLISH', prefix .. ':done:' .. id, 'done')
  end
end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return written
