-- finsec-ratelimit: decide every quota of one key, atomically, at the server's time.
--
-- A transcription of src/algorithm.rs (`evaluate`); keep the two in step.
--
-- KEYS[i]            the state of quota i, all under one hash tag: decimal integers,
--                    `<tat>` (GCRA), `<start>:<count>` (fixed window) or
--                    `<start>:<previous>:<current>` (sliding window)
-- ARGV[1]            the request's cost
-- ARGV[3i-1..3i+1]   quota i: 'g', emission interval (us), tolerance (us)   (GCRA)
--                            'f', limit, period (us)                         (fixed window)
--                            's', limit, period (us)                         (sliding window)
--
-- Reply: { now_seconds, now_microseconds, then per quota: allowed (1/0), remaining,
--          retry_after_us, reset_after_us }, where remaining and reset_after_us are taken
--          after this request when every quota allowed it, and without it otherwise.
--
-- State is written only when every quota allows (and the cost is not 0), each key with
-- PSETEX from its evaluation's ttl, so a denied request consumes nothing and keys vanish
-- once their state is meaningless. Needs Redis 5 or later (writes after TIME rely on the
-- script-effects replication that is the default from Redis 5).
--
-- Speed: this runs in front of every request, so it is written flat: no table is built per
-- quota, each argument is converted once, and the commonest case (one GCRA quota) has a
-- path of its own that builds nothing but the reply.
--
-- Arithmetic: Lua 5.1 numbers are IEEE doubles. Every count, period and span is an integer
-- below 2^53 (the Quota constructors guarantee it, and the sliding window's limit x period
-- too), so +, -, * of them are exact. Division is never trusted to round: math.fmod is exact
-- for doubles (C fmod has no rounding), a - fmod(a, b) is then an exact multiple of b, and
-- dividing an exact multiple gives the exact integer quotient. The one absolute time that
-- may pass 2^53 is GCRA's theoretical arrival time (now + a tolerance of up to 2^53 us); when
-- it does, it is handled relative to now and converted to and from its decimal string as
-- (seconds, microseconds) parts. Integers are written with string.format('%.0f'): a Lua
-- number passed to redis.call is not formatted the same way by every Redis version.

local TWO53 = 9007199254740992
local TWO31 = 2147483648
local US = 1000000
local fmod, floor, max, min = math.fmod, math.floor, math.max, math.min
local format, match, tonumber = string.format, string.match, tonumber

local n = #KEYS
local cost = tonumber(ARGV[1])
if n == 0 or #ARGV ~= 1 + 3 * n or not cost or cost < 0 or cost ~= floor(cost) then
  return redis.error_reply('FINSEC_RL_ARGS expected a cost and 3 arguments per key')
end

local time = redis.call('TIME')
local now_s = tonumber(time[1])
local now_us = tonumber(time[2])
local now = now_s * US + now_us

-- Fast path: one GCRA quota whose stored time (if any) is an integer below 2^53, written
-- back as '%d%06d' of whole seconds below 2^31 and microseconds, with a ttl below 2^31 ms.
-- The same arithmetic as the general code below, without its tables, helpers and
-- dispatch; any other case (a state or time outside those ranges) falls through to it,
-- having written nothing. About one Redis CPU microsecond in six per decision.
if n == 1 and ARGV[2] == 'g' then
  local t, tau = tonumber(ARGV[3]), tonumber(ARGV[4])
  if t and tau and t >= 1 and tau >= 1 and t < TWO53 and tau < TWO53
      and t == floor(t) and tau == floor(tau) then
    local stored = redis.call('GET', KEYS[1])
    local r = 0
    local x = stored and tonumber(stored)
    if x and x >= 0 and x < TWO53 and x == floor(x) then
      r = x - now
      if r < 0 then r = 0 end
      stored = false
    end
    if not stored then
      local inc = t * cost
      local wait = r - (tau - inc)
      if wait > 0 then
        local left = tau - r
        if left < 0 then left = 0 end
        return { now_s, now_us, 0, (left - fmod(left, t)) / t, wait, r }
      end
      local nr = r + inc
      local after = tau - nr
      if cost == 0 then
        return { now_s, now_us, 1, (after - fmod(after, t)) / t, 0, nr }
      end
      local tat = now + nr
      local c = fmod(tat, US)
      local secs = (tat - c) / US
      local m = fmod(nr, 1000)
      local ms = (nr - m) / 1000 + 1
      if m > 0 then ms = ms + 1 end
      if tat < TWO53 and secs >= 1 and secs < TWO31 and ms < TWO31 then
        redis.call('PSETEX', KEYS[1], format('%d', ms), format('%d%06d', secs, c))
        return { now_s, now_us, 1, (after - fmod(after, t)) / t, 0, nr }
      end
    end
  end
end

-- With several quotas, each one's evaluation is kept in flat arrays until all are decided:
-- allowed, remaining before/after, retry, reset before/after, ttl and the state to write
-- when every quota allows. One quota (the common case) needs no table but the reply.
local oks, rem0s, rem1s, retries, reset0s, reset1s, ttls, states
if n > 1 then
  oks, rem0s, rem1s, retries, reset0s, reset1s, ttls, states = {}, {}, {}, {}, {}, {}, {}, {}
end
local all_allowed = true

-- A non-negative integer below 2^53 in decimal. '%d' is several times cheaper than '%.0f',
-- but converts to a C long, which may be 32 bits wide: a number of 2^31 or more goes in
-- 6-digit parts, each part below 2^31 (a time in microseconds needs two until 2038).
local function int(x)
  if x < TWO31 then return format('%d', x) end
  local c = fmod(x, US)
  local y = (x - c) / US
  if y < TWO31 then return format('%d%06d', y, c) end
  local b = fmod(y, US)
  return format('%d%06d%06d', (y - b) / US, b, c)
end

-- A ttl in microseconds as PSETEX's argument: rounded up to whole milliseconds, plus 1 ms
-- because Redis may date the expiry from a clock reading taken when the script started, a
-- little before TIME above.
local function px(us)
  local m = fmod(us, 1000)
  local ms = (us - m) / 1000 + 1
  if m > 0 then ms = ms + 1 end
  return int(ms)
end

for i = 1, n do
  local b = 3 * i - 1
  local code = ARGV[b]
  local p1, p2 = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
  if not (p1 and p2 and p1 >= 1 and p2 >= 1 and p1 < TWO53 and p2 < TWO53
      and p1 == floor(p1) and p2 == floor(p2)) then
    return redis.error_reply('FINSEC_RL_ARGS quota ' .. i .. ' has bad parameters')
  end
  local stored = redis.call('GET', KEYS[i])
  local ok, rem0, rem1, retry, reset0, reset1, ttl, state
  if code == 'g' then
    -- p1 = emission interval t, p2 = tolerance tau (a multiple of t, at least t)
    local t, tau = p1, p2
    -- r = max(stored tat, now) - now
    local r = 0
    if stored then
      local x = tonumber(stored)
      if x and x >= 0 and x < TWO53 and x == floor(x) then
        r = x - now
      elseif match(stored, '^%d+$') and #stored <= 17 then
        -- at or above 2^53: split into seconds and microseconds, each exact
        r = (tonumber(string.sub(stored, 1, -7)) - now_s) * US
          + (tonumber(string.sub(stored, -6)) - now_us)
      else
        return redis.error_reply(
          'FINSEC_RL_STATE the stored state of quota ' .. i .. ' is corrupt: not a time')
      end
      if r < 0 then r = 0 end
    end
    local inc = t * cost
    -- allow_at - now = r + inc - tau, computed without leaving 0..2^53
    local wait = r - (tau - inc)
    local left = tau - r
    if left < 0 then left = 0 end
    local before = (left - fmod(left, t)) / t
    rem0, reset0 = before, r
    if wait > 0 then
      ok, rem1, retry, reset1 = false, before, wait, r
      all_allowed = false
    else
      local nr = r + inc
      local after = tau - nr
      ok, rem1, retry, reset1 = true, (after - fmod(after, t)) / t, 0, nr
      ttl = nr
      local tat = now + nr
      if tat < TWO53 then
        state = int(tat)
      else
        local lo = now_us + fmod(nr, US)
        local hi = now_s + (nr - fmod(nr, US)) / US
        if lo >= US then
          hi = hi + 1
          lo = lo - US
        end
        state = format('%.0f%06.0f', hi, lo)
      end
    end
  elseif code == 'f' or code == 's' then
    local limit, period = p1, p2
    local start = now - fmod(now, period)
    local previous, count = 0, 0
    if stored then
      local s, p, c
      if code == 'f' then
        s, c = match(stored, '^(%d+):(%d+)$')
        p = '0'
      else
        s, p, c = match(stored, '^(%d+):(%d+):(%d+)$')
      end
      if not s then
        return redis.error_reply('FINSEC_RL_STATE the stored state of quota ' .. i
          .. ' is corrupt: not a ' .. (code == 'f' and 'fixed' or 'sliding') .. ' window')
      end
      if #s > 16 or #p > 16 or #c > 16 then
        return redis.error_reply(
          'FINSEC_RL_STATE the stored state of quota ' .. i .. ' is corrupt: out of range')
      end
      s, p, c = tonumber(s), tonumber(p), tonumber(c)
      if s >= TWO53 or p >= TWO53 or c >= TWO53 then
        return redis.error_reply(
          'FINSEC_RL_STATE the stored state of quota ' .. i .. ' is corrupt: out of range')
      end
      if p > limit or c > limit then
        return redis.error_reply('FINSEC_RL_STATE the stored state of quota ' .. i
          .. ' is corrupt: count above the limit')
      end
      -- A later window than now's (the clock stepped back) is still the current one.
      if s >= start then
        start, previous, count = s, p, c
      elseif code == 's' and s == start - period then
        previous = c
      end
    end
    local window_end = start + period - now
    if code == 'f' then
      local before = limit - count
      if before < 0 then before = 0 end
      rem0, reset0, reset1 = before, window_end, window_end
      if count + cost > limit then
        ok, rem1, retry = false, before, window_end
        all_allowed = false
      else
        count = count + cost
        ok, rem1, retry = true, limit - count, 0
        ttl = window_end
        state = int(start) .. ':' .. int(count)
      end
    else
      local elapsed = now - start
      if elapsed < 0 then elapsed = 0 end
      -- weighted = ceil(previous * (period - elapsed) / period)
      local a = previous * (period - elapsed)
      local m = fmod(a, period)
      local weighted = (a - m) / period
      if m > 0 then weighted = weighted + 1 end
      local used = weighted + count
      local before = limit - used
      if before < 0 then before = 0 end
      rem0, reset0, reset1 = before, window_end, window_end
      if used + cost > limit then
        -- The smallest elapsed time e in 0..=period at which
        -- ceil(c * (period - e) / period) <= room: 0 if c <= room, else
        -- period - min(floor(room * period / c), period).
        local wait
        local room = limit - (count + cost)
        if room >= 0 then
          -- later in this window, once the previous window's weight has decayed enough...
          local e = 0
          if previous > room then
            local q = room * period
            e = period - min((q - fmod(q, previous)) / previous, period)
          end
          if e < period then
            wait = max(e - elapsed, 0)
          else
            wait = window_end
          end
        else
          -- ...or in the next window, where this window's count becomes the previous one.
          local e = 0
          room = limit - cost
          if count > room then
            local q = room * period
            e = period - min((q - fmod(q, count)) / count, period)
          end
          wait = window_end + e
        end
        ok, rem1, retry = false, before, max(wait, 1)
        all_allowed = false
      else
        count = count + cost
        ok, rem1, retry = true, limit - (weighted + count), 0
        ttl = window_end + period
        state = int(start) .. ':' .. int(previous) .. ':' .. int(count)
      end
    end
  else
    return redis.error_reply('FINSEC_RL_ARGS quota ' .. i .. ' has an unknown algorithm')
  end
  if n == 1 then
    if not ok then
      return { now_s, now_us, 0, rem0, retry, reset0 }
    end
    if cost > 0 then
      redis.call('PSETEX', KEYS[1], px(ttl), state)
    end
    return { now_s, now_us, 1, rem1, 0, reset1 }
  end
  oks[i], rem0s[i], rem1s[i], retries[i] = ok, rem0, rem1, retry
  reset0s[i], reset1s[i], ttls[i], states[i] = reset0, reset1, ttl, state
end

local reply = { now_s, now_us }
for i = 1, n do
  if all_allowed and cost > 0 then
    redis.call('PSETEX', KEYS[i], px(ttls[i]), states[i])
  end
  local k = 4 * i - 1
  reply[k] = oks[i] and 1 or 0
  reply[k + 2] = retries[i]
  if all_allowed then
    reply[k + 1], reply[k + 3] = rem1s[i], reset1s[i]
  else
    reply[k + 1], reply[k + 3] = rem0s[i], reset0s[i]
  end
end
return reply
