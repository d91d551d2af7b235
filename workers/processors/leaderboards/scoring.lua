-- Apply a batch of score submissions atomically: one call, one pass, in batch order.
--
-- KEYS[1]            the journal stream (applied submissions waiting for MySQL)
-- KEYS[2 + 4*(i-1)]  per submission i: dedup marker, board sorted set, submissions hash,
--                    closed marker
-- ARGV[1] dedup TTL in seconds, ARGV[2] the "done" value, then 13 values per submission:
--   op            "gt" | "lt" (best), "set" (latest), "add" (increment/decrement)
--   value         the submitted score; for "add" the signed delta
--   tie_break     from encoding.py, already flipped for the board's sort order
--   multiplier    2**time_bits
--   limit         largest absolute score the sort value holds exactly
--   max_subs      accepted submissions allowed per player and period; 0 = no limit
--   expire_at     unix seconds when the period's keys expire; 0 = never
--   rank_order    "rev" (higher is better, ZREVRANK) or "fwd" (lower is better, ZRANK)
--   player, idempotency key, event id, board id, period
-- Returns per submission {status, old_rank, new_rank, sort_value, leader, leader_rank,
-- leader_value}: ranks are 0-based, -1 when absent; leader is who was first before this
-- submission ("" if none), leader_rank and leader_value its rank and sort value after it. Status: applied, duplicate, closed, rate_limited,
-- out_of_range. Only "applied" changes anything; it sets the dedup marker to done, counts the
-- submission, and appends it to the journal, all in this same atomic call.
local ttl = ARGV[1]
local done = ARGV[2]
local stride = 13
local results = {}

local function rank_of(order, key, member)
  local r
  if order == 'rev' then r = redis.call('ZREVRANK', key, member)
  else r = redis.call('ZRANK', key, member) end
  if r == false then return -1 end
  return r
end

local function leader_of(order, key)
  local top
  if order == 'rev' then top = redis.call('ZREVRANGE', key, 0, 0)
  else top = redis.call('ZRANGE', key, 0, 0) end
  return top[1] or ''
end

local function fmt(x) return string.format('%.17g', x) end

for i = 1, (#ARGV - 2) / stride do
  local a = 2 + (i - 1) * stride
  local op, value, tie_break = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local multiplier, limit = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local max_subs, expire_at = tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7])
  local order, player = ARGV[a + 8], ARGV[a + 9]
  local k = 2 + (i - 1) * 4
  local dedup, board, subs, closed = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local status = 'applied'
  if redis.call('GET', dedup) == done then
    status = 'duplicate'
  elseif redis.call('EXISTS', closed) == 1 then
    status = 'closed'
  elseif max_subs > 0 and (tonumber(redis.call('HGET', subs, player)) or 0) >= max_subs then
    status = 'rate_limited'
  end
  local raw = value
  local current = nil
  if status == 'applied' and op == 'add' then
    current = redis.call('ZSCORE', board, player)
    if current then raw = math.floor(tonumber(current) / multiplier) + value end
    if math.abs(raw) > limit then status = 'out_of_range' end
  end
  if status ~= 'applied' then
    results[i] = {status, -1, -1, '', '', -1, ''}
  else
    local old_rank = rank_of(order, board, player)
    local leader = leader_of(order, board)
    local sort_value = raw * multiplier + tie_break
    if op == 'gt' or op == 'lt' then
      redis.call('ZADD', board, string.upper(op), fmt(sort_value), player)
    else
      redis.call('ZADD', board, fmt(sort_value), player)
    end
    local stored = redis.call('ZSCORE', board, player)
    local new_rank = rank_of(order, board, player)
    local leader_rank, leader_value = -1, ''
    if leader ~= '' and leader ~= player then
      leader_rank = rank_of(order, board, leader)
      leader_value = redis.call('ZSCORE', board, leader)
    end
    redis.call('SET', dedup, done, 'EX', ttl)
    if max_subs > 0 then redis.call('HINCRBY', subs, player, 1) end
    if expire_at > 0 then
      redis.call('EXPIREAT', board, expire_at)
      if max_subs > 0 then redis.call('EXPIREAT', subs, expire_at) end
    end
    redis.call('XADD', KEYS[1], '*', 'k', ARGV[a + 10], 'e', ARGV[a + 11], 'b', ARGV[a + 12],
      'p', ARGV[a + 13], 'u', player, 's', ARGV[a + 2], 'v', stored)
    results[i] = {status, old_rank, new_rank, stored, leader, leader_rank, leader_value}
  end
end
return results
