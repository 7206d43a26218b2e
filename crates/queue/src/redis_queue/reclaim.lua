-- Takes over stream entries whose delivery has gone unacknowledged for too
-- long (their worker died), and reports how often each has been delivered.
--
-- KEYS[1]  the job stream          ({prefix}:jobs)
-- ARGV[1]  the consumer group
-- ARGV[2]  the consumer taking the entries over
-- ARGV[3]  the visibility timeout: minimum idle time, in milliseconds
-- ARGV[4]  the most entries to take
--
-- XAUTOCLAIM moves each entry idle for at least ARGV[3] ms to ARGV[2] and
-- counts one more delivery; an entry claimed by someone else in between is no
-- longer idle, so two workers never both take one. It scans the pending list
-- a bounded number of entries per call, so the cursor is followed until the
-- whole list has been seen or enough entries were taken. Entries deleted from
-- the stream while pending are dropped from the pending list by XAUTOCLAIM.
--
-- Returns a list of {entry id, {field, value, ...}, delivery count}.
local wanted = tonumber(ARGV[4])
local taken = {}
local cursor = '0-0'
repeat
  local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor,
    'COUNT', wanted - #taken)
  cursor = reply[1]
  for _, entry in ipairs(reply[2]) do
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    local count = 1
    if pending[1] then
      count = pending[1][4]
    end
    taken[#taken + 1] = {entry[1], entry[2], count}
  end
until cursor == '0-0' or #taken >= wanted
return taken
