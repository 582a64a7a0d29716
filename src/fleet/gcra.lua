-- One GCRA step, atomic: the key holds the theoretical arrival time (TAT) in
-- microseconds of Redis's own clock, so the nodes' clocks never matter.
-- KEYS[1]: the limit's key. ARGV[1]: microseconds per unit (1/rate);
-- ARGV[2]: the burst in units; ARGV[3]: the units this request costs.
-- Returns 0 when admitted (and records it), else the microseconds to wait.
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval * cost
local wait = new_tat - now - interval * burst
if wait > 0 then return math.ceil(wait) end
-- The key lives exactly as long as it holds anything a fresh key would not.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
