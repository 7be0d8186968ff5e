-- finsec-ratelimit: decide every quota of one key, atomically, at the server's time.
--
-- A line-by-line transcription of src/algorithm.rs (`evaluate`); keep the two in step.
--
-- KEYS[i]        the state of quota i, all under one hash tag: a string of decimal integers,
--                `<tat>` (GCRA), `<start>:<count>` (fixed window) or
--                `<start>:<previous>:<current>` (sliding window)
-- ARGV[1]        the request's cost
-- ARGV[4i-2..4i+1] quota i: algorithm code ('g', 's' or 'f'), limit, period (us), burst
--
-- Reply: { now_seconds, now_microseconds, then per quota: allowed (1/0), remaining,
--          retry_after_us, reset_after_us }, where remaining and reset_after_us are taken
--          after this request when every quota allowed it, and without it otherwise.
--
-- State is written only when every quota allows (and the cost is not 0), each key with
-- SET ... PX from its evaluation's ttl, so a denied request consumes nothing and keys vanish
-- once their state is meaningless. Needs Redis 5 or later (writes after TIME rely on the
-- script-effects replication that is the default from Redis 5).
--
-- Integers are written with string.format('%.0f'): a Lua number passed to redis.call is
-- formatted with %.14g, exact only below 10^14.
--
-- Arithmetic: Lua 5.1 numbers are IEEE doubles. Every count, period and span is an integer
-- below 2^53 (the Quota constructors guarantee it, and the sliding window's
-- limit x period too), so +, -, * of them are exact. Division is never trusted to round:
-- math.fmod is exact for doubles (C fmod has no rounding), a - fmod(a, b) is then an exact
-- multiple of b, and dividing an exact multiple gives the exact integer quotient. The one
-- absolute time that may pass 2^53 is GCRA's theoretical arrival time (now + a tolerance of
-- up to 2^53 us), so it is only ever handled relative to now, and converted to and from
-- its decimal string as (seconds, microseconds) parts.

local US = 1000000

local function corrupt(i, what)
  return redis.error_reply(
    'FINSEC_RL_STATE the stored state of quota ' .. i .. ' is corrupt: ' .. what)
end

local function div_floor(a, b)
  return (a - math.fmod(a, b)) / b
end

local function div_ceil(a, b)
  local r = math.fmod(a, b)
  local q = (a - r) / b
  if r > 0 then q = q + 1 end
  return q
end

-- ceil(a * b / c), with a * b <= 2^53.
local function mul_div_ceil(a, b, c)
  return div_ceil(a * b, math.max(c, 1))
end

-- The smallest elapsed time e in 0..=period at which ceil(count * (period - e) / period) <= room.
local function elapsed_needed(count, room, period)
  if count <= room then return 0 end
  local fits = div_floor(room * period, count)
  return period - math.min(fits, period)
end

local n = #KEYS
local cost = tonumber(ARGV[1])
if n == 0 or #ARGV ~= 1 + 4 * n or not cost or cost < 0 or cost ~= math.floor(cost) then
  return redis.error_reply('FINSEC_RL_ARGS expected a cost and 4 arguments per key')
end

local time = redis.call('TIME')
local now_s = tonumber(time[1])
local now_us = tonumber(time[2])
local now = now_s * US + now_us

-- A stored non-negative integer below 2^53.
local function stored_int(v, i)
  if #v > 16 then error(corrupt(i, 'out of range')) end
  local x = tonumber(v)
  if x >= 9007199254740992 then error(corrupt(i, 'out of range')) end
  return x
end

-- A stored absolute time (us since the epoch, possibly above 2^53) minus now, exactly.
local function stored_time_minus_now(v, i)
  if not string.match(v, '^%d+$') or #v > 17 then error(corrupt(i, 'not a time')) end
  local hi, lo = 0, tonumber(v)
  if #v > 6 then
    hi = tonumber(string.sub(v, 1, -7))
    lo = tonumber(string.sub(v, -6))
  end
  return (hi - now_s) * US + (lo - now_us)
end

-- now + d (0 <= d <= 2^53) as a decimal string, exactly.
local function time_after_now(d)
  local hi = now_s + div_floor(d, US)
  local lo = now_us + math.fmod(d, US)
  if lo >= US then
    hi = hi + 1
    lo = lo - US
  end
  return string.format('%.0f%06.0f', hi, lo)
end

-- Each evaluation returns: allowed, remaining_before, remaining_after, retry_after_us,
-- reset_before_us, reset_after_us, ttl_us, the state to write when every quota allows.

local function gcra(i, key, limit, period, burst)
  local t = div_ceil(period, limit)
  local tau = t * burst
  local stored = redis.call('GET', key)
  -- r = max(stored tat, now) - now
  local r = 0
  if stored then r = math.max(stored_time_minus_now(stored, i), 0) end
  local inc = t * cost
  -- allow_at - now = r + inc - tau, computed without leaving 0..2^53
  local wait = r - (tau - inc)
  local before = div_floor(math.max(tau - r, 0), t)
  if wait > 0 then
    return false, before, before, wait, r, r, r, nil
  end
  local nr = r + inc
  return true, before, div_floor(tau - nr, t), 0, r, nr, nr, time_after_now(nr)
end

local function fixed(i, key, limit, period)
  local stored = redis.call('GET', key)
  local start = now - math.fmod(now, period)
  local count = 0
  if stored then
    local s, c = string.match(stored, '^(%d+):(%d+)$')
    if not s then error(corrupt(i, 'not a fixed window')) end
    s, c = stored_int(s, i), stored_int(c, i)
    if c > limit then error(corrupt(i, 'count above the limit')) end
    -- A later window than now's (the clock stepped back) is still the current one.
    if s >= start then
      start = s
      count = c
    end
  end
  local reset = start + period - now
  local before = math.max(limit - count, 0)
  if count + cost > limit then
    return false, before, before, reset, reset, reset, reset, nil
  end
  count = count + cost
  return true, before, limit - count, 0, reset, reset, reset, string.format('%.0f:%.0f', start, count)
end

local function sliding(i, key, limit, period)
  local stored = redis.call('GET', key)
  local start = now - math.fmod(now, period)
  local previous, current = 0, 0
  if stored then
    local s, p, c = string.match(stored, '^(%d+):(%d+):(%d+)$')
    if not s then error(corrupt(i, 'not a sliding window')) end
    s, p, c = stored_int(s, i), stored_int(p, i), stored_int(c, i)
    if p > limit or c > limit then error(corrupt(i, 'count above the limit')) end
    if s >= start then
      -- As for the fixed window: a later window than now's is still the current one.
      start = s
      previous, current = p, c
    elseif s == start - period then
      previous, current = c, 0
    end
  end
  local elapsed = math.max(now - start, 0)
  local weighted = mul_div_ceil(previous, period - elapsed, period)
  local used = weighted + current
  local window_end = start + period - now
  local before = math.max(limit - used, 0)
  if used + cost > limit then
    local retry
    if current + cost <= limit then
      -- later in this window, once the previous window's weight has decayed enough...
      local e = elapsed_needed(previous, limit - (current + cost), period)
      if e < period then
        retry = math.max(e - elapsed, 0)
      else
        retry = window_end
      end
    else
      -- ...or in the next window, where this window's count becomes the previous one.
      retry = window_end + elapsed_needed(current, limit - cost, period)
    end
    return false, before, before, math.max(retry, 1), window_end, window_end,
      window_end + period, nil
  end
  current = current + cost
  return true, before, limit - (weighted + current), 0, window_end, window_end,
    window_end + period,
    string.format('%.0f:%.0f:%.0f', start, previous, current)
end

local function positive_int(v)
  local x = tonumber(v)
  if x and x >= 1 and x < 9007199254740992 and x == math.floor(x) then return x end
  return nil
end

local evaluations = {}
local all_allowed = true
for i = 1, n do
  local base = 1 + 4 * (i - 1)
  local algorithm = ARGV[base + 1]
  local limit = positive_int(ARGV[base + 2])
  local period = positive_int(ARGV[base + 3])
  local burst = positive_int(ARGV[base + 4])
  if not (limit and period and burst) then
    return redis.error_reply('FINSEC_RL_ARGS quota ' .. i .. ' has a bad limit, period or burst')
  end
  local e
  if algorithm == 'g' then
    e = { gcra(i, KEYS[i], limit, period, burst) }
  elseif algorithm == 'f' then
    e = { fixed(i, KEYS[i], limit, period) }
  elseif algorithm == 's' then
    e = { sliding(i, KEYS[i], limit, period) }
  else
    return redis.error_reply('FINSEC_RL_ARGS quota ' .. i .. ' has an unknown algorithm')
  end
  if not e[1] then all_allowed = false end
  evaluations[i] = e
end

local reply = { now_s, now_us }
for i = 1, n do
  local e = evaluations[i]
  if all_allowed and cost > 0 then
    -- ttl rounded up to whole milliseconds, plus 1 ms because Redis may date the expiry
    -- from a clock reading taken when the script started, a little before TIME above.
    -- (A number below 10^14 reaches Redis exactly: Lua formats it with %.14g.)
    redis.call('SET', KEYS[i], e[8], 'PX', div_ceil(e[7], 1000) + 1)
  end
  local remaining, reset = e[2], e[5]
  if all_allowed then remaining, reset = e[3], e[6] end
  reply[#reply + 1] = e[1] and 1 or 0
  reply[#reply + 1] = remaining
  reply[#reply + 1] = e[4]
  reply[#reply + 1] = reset
end
return reply
