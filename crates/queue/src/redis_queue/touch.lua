-- Extends a delivery's lease: resets the idle time of a pending stream entry,
-- but only while the consumer that asks still holds it (a reclaim may have
-- handed it to another worker, or a release parked it). JUSTID: the claim
-- does not count as a delivery.
-- KEYS[1] jobs stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id.
-- Returns 1 when extended, 0 otherwise.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if pending[1] and pending[1][2] == ARGV[2] then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
  return 1
end
return 0
