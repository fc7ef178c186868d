/**
 * The Lua scripts behind `RedisHealthStore`: each state change is one atomic
 * script that recounts against the shared state, bumps the hash's version
 * (`v`, so instances can drop replies and messages that arrive late) and
 * publishes the result. Every script returns the hash as
 * `HMGET c u m r msg v` (the acquire script wraps it with its verdict).
 *
 * Epoch milliseconds pass through `%.0f`: Lua numbers are doubles, and
 * Redis would otherwise be free to write them in exponent form.
 */

const READ = `local function read(key) return redis.call('HMGET', key, 'c', 'u', 'm', 'r', 'msg', 'v') end
local function ms(x) return string.format('%.0f', x) end
local function publish(channel, id, state) redis.call('PUBLISH', channel, cjson.encode({id = id, s = state})) end
-- After a change: bump the version, keep the hash \`keep\` ms past its cooldown's end, tell the others.
local function save(key, now, keep, channel, id)
  redis.call('HINCRBY', key, 'v', 1)
  local u = tonumber(redis.call('HGET', key, 'u') or '0') or 0
  if u > now then keep = keep + (u - now) end
  redis.call('PEXPIRE', key, ms(keep))
  local state = read(key)
  publish(channel, id, state)
  return state
end
`;

export const LUA = {
  /**
   * KEYS: state, lock. ARGV: rule (immediate|consecutive), immediate ms, threshold,
   * transient ms, was probe (1|0), now, reason, message, owner, keep ms, channel, id.
   */
  failure: `${READ}
local c = redis.call('HINCRBY', KEYS[1], 'c', 1)
local last = tonumber(redis.call('HGET', KEYS[1], 'm') or '0') or 0
local now = tonumber(ARGV[6])
local open = 0
if ARGV[1] == 'immediate' then open = tonumber(ARGV[2])
elseif ARGV[5] == '1' then if last > 0 then open = last else open = tonumber(ARGV[4]) end
elseif c >= tonumber(ARGV[3]) then open = tonumber(ARGV[4]) end
if open > 0 then
  redis.call('HSET', KEYS[1], 'u', ms(now + open), 'm', ms(open), 'r', ARGV[7], 'msg', ARGV[8])
end
if ARGV[5] == '1' and redis.call('GET', KEYS[2]) == ARGV[9] then redis.call('DEL', KEYS[2]) end
return save(KEYS[1], now, tonumber(ARGV[10]), ARGV[11], ARGV[12])
`,

  /** KEYS: state, lock. ARGV: owner, keep ms, channel, id. Closes the breaker (keeping the version). */
  success: `${READ}
redis.call('HSET', KEYS[1], 'c', 0, 'u', 0, 'm', 0, 'r', '', 'msg', '')
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return save(KEYS[1], 0, tonumber(ARGV[2]), ARGV[3], ARGV[4])
`,

  /**
   * KEYS: state, lock. ARGV: owner, now, lock ms. The probe lock, taken only
   * while the shared state is half-open (or unknown). Returns
   * {'granted', state} | {'denied', state, pttl} | {'state', state}.
   */
  acquire: `${READ}
local state = read(KEYS[1])
local u = tonumber(state[2] or '0') or 0
local now = tonumber(ARGV[2])
if state[6] and (u == 0 or u > now) then return {'state', state} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[3]) then return {'granted', state} end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {'granted', state}
end
return {'denied', state, redis.call('PTTL', KEYS[2])}
`,

  /** KEYS: lock. ARGV: owner, channel, id. A cancelled probe frees the lock for the others. */
  release: `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], cjson.encode({id = ARGV[3], released = 1}))
end
return 1
`,

  /**
   * KEYS: state. ARGV: c, u, m, r, msg, now, keep ms, channel, id. After an
   * outage: a local state replaces the shared one only when it is more severe.
   */
  merge: `${READ}
local cur = redis.call('HMGET', KEYS[1], 'c', 'u')
local c = tonumber(cur[1] or '0') or 0
local u = tonumber(cur[2] or '0') or 0
local nc = tonumber(ARGV[1])
local nu = tonumber(ARGV[2])
if nu > u or (u == 0 and nu == 0 and nc > c) then
  redis.call('HSET', KEYS[1], 'c', ARGV[1], 'u', ARGV[2], 'm', ARGV[3], 'r', ARGV[4], 'msg', ARGV[5])
  return save(KEYS[1], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9])
end
return read(KEYS[1])
`,
} as const;
