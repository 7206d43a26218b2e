-- Stores a task's final state and retires its stream entry, atomically.
--
-- KEYS[1]  the task's state key    ({prefix}:task:{id})
-- KEYS[2]  the job stream          ({prefix}:jobs)
-- ARGV[1]  the consumer group
-- ARGV[2]  the stream entry id of the delivery
-- ARGV[3]  the final state, JSON   ({"state":"done",...}), without an owner
-- ARGV[4]  the state's TTL in milliseconds
-- ARGV[5]  the task's owner as the job names it; '' when none or unknown
-- ARGV[6]  the largest state, in bytes, published whole to waiters
--
-- The first final state wins: when the stored state is already "done" (the job
-- was delivered twice and the other run finished first) it is kept. A missing
-- state (expired while the job waited) is written anyway, since a late result
-- is still worth keeping. The entry is acknowledged and deleted either way, so
-- the stream holds only unfinished jobs and does not grow without bound.
--
-- States are written by this code only, always with "state" first and
-- "owner" (when there is one) second, so prefixes tell a final state from a
-- pending one and find the owner without decoding what may be a megabyte of
-- output. The final state keeps the pending state's owner (or, should that
-- have expired, the job's), and the task leaves its client's set of
-- unfinished tasks (see submit.lua).
--
-- Waiters (GET /results?wait, POST /run-code?wait) are told on the channel
-- {prefix}:done:{id}, named after KEYS[1], in the same atomic step. The
-- message is the state just written when it is at most ARGV[6] bytes, so a
-- waiter need not read it back; else (and from every other publisher) it is
-- 'done', and waiters read the state.
--
-- Returns 1 when the state was written, 0 when an earlier final state was kept.
local written = 0
local current = redis.call('GET', KEYS[1])
local prefix, id = string.match(KEYS[1], '^(.*):task:([^:]*)$')
local owner, client = nil, nil
if current then
  owner = string.match(current, '^{"state":"%a+","owner":"([^"]*)"')
  client = string.match(current, '^{"state":"pending"[^}]-,"client":"([^"]*)"')
end
if not (current and string.sub(current, 1, 15) == '{"state":"done"') then
  if not owner and ARGV[5] ~= '' then
    owner = ARGV[5]
  end
  local state = ARGV[3]
  if owner then
    state = '{"state":"done","owner":"' .. owner .. '",' .. string.sub(ARGV[3], 17)
  end
  redis.call('SET', KEYS[1], state, 'PX', ARGV[4])
  written = 1
  if prefix then
    if client then
      redis.call('ZREM', prefix .. ':client:' .. client, id)
    end
    local message = 'done'
    if #state <= tonumber(ARGV[6]) then
      message = state
    end
    redis.call('PUBLISH', prefix .. ':done:' .. id, message)
  end
end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return written
