-- Apply a batch of score submissions atomically: one call, one pass, in batch order.
--
-- Submissions of one batch mostly hit a few (board, period) pairs, so each pair is described
-- once (a "spec") and each submission only points at its spec.
-- ARGV[1] dedup TTL in seconds, ARGV[2] the "done" value, ARGV[3] the number of specs S,
-- then 8 values per spec:
--   op            "gt" | "lt" (best), "set" (latest), "add" (increment/decrement)
--   multiplier    2**time_bits
--   limit         largest absolute score the sort value holds exactly
--   max_subs      accepted submissions allowed per player and period; 0 = no limit
--   expire_at     unix seconds when the period's keys expire; 0 = never
--   rank_order    "rev" (higher is better, ZREVRANK) or "fwd" (lower is better, ZRANK)
--   board id, period
-- then 6 values per submission: spec number (1-based), value (the score; for "add" the signed
-- delta), tie_break (from encoding.py), player, idempotency key, event id. Spec number 0 marks
-- an event the processor refused before scoring (unknown board, score out of range...): only
-- its dedup marker is checked and set, so its redelivery is a duplicate, not a new refusal.
-- KEYS[1] the journal stream; KEYS[2 + 3*(s-1)] .. +2: spec s's sorted set, submissions hash
-- and closed marker; KEYS[1 + 3*S + i]: submission i's dedup marker.
-- Returns one JSON array with, per submission, {status} or, when applied, {status, old_rank,
-- new_rank, sort_value, leader, leader_rank, leader_value, journal_id}: ranks 0-based, -1
-- when absent or not looked up (a best score not beaten changes no rank, so none is read);
-- sort_value is the player's value after the submission; journal_id is the stream id of the
-- submission's journal entry;
-- leader is who was first before this submission when the submitter took first place ("" if
-- none, or the submitter was first already, or did not become first: no event needs it then),
-- leader_rank and leader_value its rank and sort value after it. Sort values travel as
-- strings (exact to 2**53; cjson would round numbers to 14 digits). Status: applied, duplicate, closed,
-- rate_limited, out_of_range, refused (spec 0). Every status but duplicate is final and sets
-- the dedup marker to done (the processor guards itself: DedupMode.PROCESSOR); only
-- "applied" changes anything else: it counts the submission and appends it to the journal,
-- all in this same atomic call.
local ttl, done, nspecs = ARGV[1], ARGV[2], tonumber(ARGV[3])
local spec_width, sub_width = 8, 6
local first_sub = 3 + nspecs * spec_width
local results = {}

local function rank_of(order, key, member)
  local r
  if order == 'rev' then r = redis.call('ZREVRANK', key, member)
  else r = redis.call('ZRANK', key, member) end
  if r == false then return -1 end
  return r
end

local function member_at(order, key, rank)
  local found
  if order == 'rev' then found = redis.call('ZREVRANGE', key, rank, rank)
  else found = redis.call('ZRANGE', key, rank, rank) end
  return found[1] or ''
end

local function fmt(x) return string.format('%.17g', x) end

-- Per spec, once: is the period closed; did anything change (then its keys get their expiry).
local closed_spec, touched = {}, {}
for s = 1, nspecs do
  closed_spec[s] = redis.call('EXISTS', KEYS[2 + (s - 1) * 3 + 2]) == 1
end

for i = 1, (#ARGV - first_sub) / sub_width do
  local a = first_sub + (i - 1) * sub_width
  local s = tonumber(ARGV[a + 1])
  local value, tie_break = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local player, idem, event_id = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
  local p = 3 + (s - 1) * spec_width
  local op, multiplier, limit = ARGV[p + 1], tonumber(ARGV[p + 2]), tonumber(ARGV[p + 3])
  local max_subs, order = tonumber(ARGV[p + 4]), ARGV[p + 6]
  local k = 2 + (s - 1) * 3
  local board, subs = KEYS[k], KEYS[k + 1]
  local dedup = KEYS[1 + nspecs * 3 + i]
  local status = 'applied'
  if redis.call('GET', dedup) == done then
    status = 'duplicate'
  elseif s == 0 then
    status = 'refused'
  elseif closed_spec[s] then
    status = 'closed'
  elseif max_subs > 0 and (tonumber(redis.call('HGET', subs, player)) or 0) >= max_subs then
    status = 'rate_limited'
  end
  local current, raw = nil, value
  if status == 'applied' then
    local found = redis.call('ZSCORE', board, player)  -- false (not nil) when absent
    if found then current = tonumber(found) end
    if op == 'add' then
      if current then raw = math.floor(current / multiplier) + value end
      if math.abs(raw) > limit then status = 'out_of_range' end
    end
  end
  if status ~= 'applied' then
    if status ~= 'duplicate' then redis.call('SET', dedup, done, 'EX', ttl) end
    results[i] = {status}
  else
    local sort_value = raw * multiplier + tie_break
    local changed = current == nil or op == 'set' or op == 'add'
      or (op == 'gt' and sort_value > current) or (op == 'lt' and sort_value < current)
    local old_rank, new_rank, leader, leader_rank, leader_value = -1, -1, '', -1, ''
    local stored = fmt(current or 0)
    if changed then
      if current then old_rank = rank_of(order, board, player) end
      if op == 'gt' or op == 'lt' then
        redis.call('ZADD', board, string.upper(op), fmt(sort_value), player)
      else
        redis.call('ZADD', board, fmt(sort_value), player)
      end
      stored = fmt(sort_value)
      new_rank = rank_of(order, board, player)
      -- Only this player moved: if they are first now and were not, whoever was first is
      -- second now. Otherwise no rank event needs the leader, so none is looked up.
      if new_rank == 0 and old_rank ~= 0 then
        leader = member_at(order, board, 1)
        if leader ~= '' then
          leader_rank = 1
          leader_value = redis.call('ZSCORE', board, leader)
        end
      end
      touched[s] = true
    end
    redis.call('SET', dedup, done, 'EX', ttl)
    if max_subs > 0 then
      redis.call('HINCRBY', subs, player, 1)
      touched[s] = true
    end
    local journal_id = redis.call('XADD', KEYS[1], '*', 'd', cjson.encode(
      {idem, event_id, ARGV[p + 7], ARGV[p + 8], player, ARGV[a + 2], stored}))
    results[i] = {status, old_rank, new_rank, stored, leader, leader_rank, leader_value,
      journal_id}
  end
end

for s = 1, nspecs do
  local expire_at = tonumber(ARGV[3 + (s - 1) * spec_width + 5])
  if touched[s] and expire_at > 0 then
    redis.call('EXPIREAT', KEYS[2 + (s - 1) * 3], expire_at)
    redis.call('EXPIREAT', KEYS[2 + (s - 1) * 3 + 1], expire_at)
  end
end
return cjson.encode(results)
