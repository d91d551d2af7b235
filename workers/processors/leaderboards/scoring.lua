-- Apply a batch of score submissions atomically: one call, one pass, in batch order.
--
-- Submissions of one batch mostly hit a few (board, period) pairs, so each pair is described
-- once (a "spec") and each submission only points at its spec.
-- ARGV[1] dedup TTL in seconds, ARGV[2] the "done" value, ARGV[3] the number of specs S,
-- ARGV[4] the most submissions one journal entry holds, ARGV[5] the prefix of the kept-answer
-- keys (see "Kept answers" below), then 10 values per spec:
--   op            "gt" | "lt" (best), "set" (latest), "add" (increment/decrement)
--   multiplier    2**time_bits
--   limit         largest absolute score the sort value holds exactly
--   max_subs      accepted submissions allowed per player and period; 0 = no limit
--   expire_at     unix seconds when the period's keys expire; 0 = never
--   rank_order    "rev" (higher is better, ZREVRANK) or "fwd" (lower is better, ZRANK)
--   board id, period
--   rank_limit    the largest rank any rank-changed event of the board needs (its top
--                 threshold, at least 1): ranks are looked up only when a submission can end
--                 within it
--   thresholds    the board's top thresholds, comma-separated: which rank moves make a
--                 rank-changed event (ranks.py), so which answers are kept
-- then 6 values per submission: spec number (1-based), value (the score; for "add" the signed
-- delta), tie_break (from encoding.py), player, idempotency key, event id. Spec number 0 marks
-- an event the processor refused before scoring (unknown board, score out of range...): only
-- its dedup marker (and kept answer) is checked and set, so its redelivery is a duplicate,
-- not a new refusal.
-- KEYS[1] the journal stream; KEYS[2 + 3*(s-1)] .. +2: spec s's sorted set, submissions hash
-- and closed marker; KEYS[1 + 3*S + i]: submission i's dedup marker.
--
-- Returns one flat array, cheap to parse: J (the number of journal entries written), the J
-- entry ids, then one element per submission:
--   a status string when not applied: "d" duplicate ("d:" and the kept answer for a
--   redelivery whose first answer was kept), "r" refused (spec 0), "c" closed,
--   "l" rate limited, "o" out of range;
--   an integer when applied and no rank was looked up: the player's sort value after it (a
--   best score not beaten changes no rank; a value worse than the rank_limit-th best cannot
--   make any rank event, so neither rank is read);
--   an array when applied and ranks were read: {sort_value, old_rank, new_rank, leader_rank,
--   leader_value, leader}, ranks 0-based and -1 when absent; leader is who was first before
--   this submission when the submitter took first place ("" if none, or the submitter was
--   first already, or did not become first: no event needs it then), leader_rank and
--   leader_value its rank and sort value after it (-1 when there is no leader).
-- Sort values are integers below 2**53, exact as doubles and as integer replies.
-- Every status but duplicate is final and sets the dedup marker to done (the processor
-- guards itself: DedupMode.PROCESSOR); only "applied" changes anything else: it counts the
-- submission and journals it, all in this same atomic call.
-- Kept answers: a final answer from which the processor builds output events (a refusal:
-- "r", "c", "l", "o"; or a ranks array that reaches first place or enters a threshold) is
-- also kept, with the marker's TTL, at ARGV[5] .. idempotency key, after a
-- tag naming the event id (its length, ":", the id) and as the answer (ranks as six
-- space-separated values, the leader last). A redelivery of the same event (same event id:
-- the record its first delivery died before settling) is answered "d:" .. the kept answer,
-- so it can publish the same outputs again; a client's retry (another event id, perhaps
-- another received_at or trace, so outputs that would differ) stays a plain "d". Either way
-- the kept key's expiry is refreshed with the marker's. The marker itself stays exactly
-- "done", as every reader of markers expects; only a duplicate pays a read of the kept key.
-- Kept keys are built here, not passed in KEYS (that would cost an argument per submission
-- for a key written for few of them): like the rest, this script needs one Redis node.
-- The journal holds one stream entry per ARGV[4] applied submissions, field `d`: a JSON array of 7 values per submission
-- (idempotency key, event id, board, period, player, value, sort value after it), in
-- application order; journal.py reads them back.
local ttl, done, nspecs, per_entry = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local kept_prefix = ARGV[5]
local head, spec_width, sub_width = 5, 10, 6
local first_sub = head + nspecs * spec_width
local first_key = 1 + nspecs * 3
local results, entries, journal = {}, {}, {}

local function rank_of(order, key, member)
  local r
  if order == 'rev' then r = redis.call('ZREVRANK', key, member)
  else r = redis.call('ZRANK', key, member) end
  if r == false then return -1 end
  return r
end

local function at_rank(order, key, rank)
  if order == 'rev' then return redis.call('ZREVRANGE', key, rank, rank, 'WITHSCORES') end
  return redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')
end

local function fmt(x) return string.format('%.17g', x) end

-- Submission a's kept answer, after the tag naming its event id (see "Kept answers").
local function tag_of(a) return #ARGV[a + 6] .. ':' .. ARGV[a + 6] end
local function keep(a, answer)
  redis.call('SET', kept_prefix .. ARGV[a + 5], tag_of(a) .. answer, 'EX', ttl)
end

local function flush_journal()
  if #journal > 0 then
    entries[#entries + 1] = redis.call('XADD', KEYS[1], '*', 'd', cjson.encode(journal))
    journal = {}
  end
end

-- Per spec, once: is the period closed; did anything change (then its keys get their expiry);
-- the rank_limit-th best sort value (a bound that only stays valid while no member gets worse:
-- a member getting worse forgets it; false when the board is smaller than rank_limit).
local closed_spec, touched, cutoff = {}, {}, {}
for s = 1, nspecs do
  closed_spec[s] = redis.call('EXISTS', KEYS[2 + (s - 1) * 3 + 2]) == 1
end

-- Whether a player whose sort value is now `value` may hold a rank within the spec's limit.
local function may_rank(s, order, board, value)
  local bound = cutoff[s]
  if bound == nil then
    local found = at_rank(order, board, tonumber(ARGV[head + (s - 1) * spec_width + 9]) - 1)
    bound = found[2] and tonumber(found[2]) or false
    cutoff[s] = bound
  end
  if bound == false then return true end
  if order == 'rev' then return value >= bound end
  return value <= bound
end

-- Whether a move from old_rank to new_rank (0-based, -1 absent) makes a rank-changed event
-- (ranks.py): first place reached, or a top threshold entered. Thresholds parsed once per spec.
local thresholds = {}
local function announced(s, old_rank, new_rank)
  if new_rank == 0 then return old_rank ~= 0 end
  local list = thresholds[s]
  if list == nil then
    list = {}
    for t in string.gmatch(ARGV[head + (s - 1) * spec_width + 10], '%d+') do
      list[#list + 1] = tonumber(t)
    end
    thresholds[s] = list
  end
  for _, t in ipairs(list) do
    if new_rank < t and (old_rank < 0 or old_rank >= t) then return true end
  end
  return false
end

local applied = 0
for i = 1, (#ARGV - first_sub) / sub_width do
  local a = first_sub + (i - 1) * sub_width
  local s = tonumber(ARGV[a + 1])
  local dedup = KEYS[first_key + i]
  local status = 'a'
  -- Set first, read the previous value in the same command: every status but duplicate
  -- is final and marks the event done; a duplicate only refreshes its marker's expiry.
  if redis.call('SET', dedup, done, 'EX', ttl, 'GET') == done then
    status = 'd'
    local kept = redis.call('GETEX', kept_prefix .. ARGV[a + 5], 'EX', ttl)
    if kept then
      local tag = tag_of(a)
      if string.sub(kept, 1, #tag) == tag then status = 'd:' .. string.sub(kept, #tag + 1) end
    end
  elseif s == 0 then
    status = 'r'
  elseif closed_spec[s] then
    status = 'c'
  end
  local p = head + (s - 1) * spec_width
  local k = 2 + (s - 1) * 3
  local board, subs, player = KEYS[k], KEYS[k + 1], ARGV[a + 4]
  local op, max_subs
  if status == 'a' then
    op, max_subs = ARGV[p + 1], tonumber(ARGV[p + 4])
    if max_subs > 0 and (tonumber(redis.call('HGET', subs, player)) or 0) >= max_subs then
      status = 'l'
    end
  end
  local current, raw, multiplier = nil, nil, nil
  if status == 'a' then
    raw, multiplier = tonumber(ARGV[a + 2]), tonumber(ARGV[p + 2])
    local found = redis.call('ZSCORE', board, player)  -- false (not nil) when absent
    if found then current = tonumber(found) end
    if op == 'add' then
      if current then raw = math.floor(current / multiplier) + raw end
      if math.abs(raw) > tonumber(ARGV[p + 3]) then status = 'o' end
    end
  end
  if status ~= 'a' then
    if string.sub(status, 1, 1) ~= 'd' then keep(a, status) end  -- a refusal
    results[i] = status
  else
    local order = ARGV[p + 6]
    local sort_value = raw * multiplier + tonumber(ARGV[a + 3])
    local changed = current == nil or op == 'set' or op == 'add'
      or (op == 'gt' and sort_value > current) or (op == 'lt' and sort_value < current)
    local stored = current or 0
    local result = current or 0
    if changed then
      stored = sort_value
      local worse = current ~= nil
        and ((order == 'rev' and sort_value < current) or (order == 'fwd' and sort_value > current))
      local ranked = not worse and may_rank(s, order, board, sort_value)
      local old_rank = -1
      if ranked and current then old_rank = rank_of(order, board, player) end
      if op == 'gt' or op == 'lt' then
        redis.call('ZADD', board, string.upper(op), fmt(sort_value), player)
      else
        redis.call('ZADD', board, fmt(sort_value), player)
      end
      if worse then cutoff[s] = nil end
      result = sort_value
      if ranked then
        local new_rank = rank_of(order, board, player)
        local leader, leader_rank, leader_value = '', -1, -1
        -- Only this player moved: if they are first now and were not, whoever was first is
        -- second now. Otherwise no rank event needs the leader, so none is looked up.
        if new_rank == 0 and old_rank ~= 0 then
          local second = at_rank(order, board, 1)
          if second[1] then
            leader, leader_rank, leader_value = second[1], 1, tonumber(second[2])
          end
        end
        result = {sort_value, old_rank, new_rank, leader_rank, leader_value, leader}
        if announced(s, old_rank, new_rank) then
          keep(a, table.concat({fmt(sort_value), old_rank, new_rank, leader_rank,
            fmt(leader_value), leader}, ' '))
        end
      end
      touched[s] = true
    end
    if max_subs > 0 then
      redis.call('HINCRBY', subs, player, 1)
      touched[s] = true
    end
    local n = #journal
    journal[n + 1] = ARGV[a + 5]
    journal[n + 2] = ARGV[a + 6]
    journal[n + 3] = ARGV[p + 7]
    journal[n + 4] = ARGV[p + 8]
    journal[n + 5] = player
    journal[n + 6] = ARGV[a + 2]
    journal[n + 7] = fmt(stored)
    applied = applied + 1
    if applied % per_entry == 0 then flush_journal() end
    results[i] = result
  end
end
flush_journal()

for s = 1, nspecs do
  local expire_at = tonumber(ARGV[head + (s - 1) * spec_width + 5])
  if touched[s] and expire_at > 0 then
    redis.call('EXPIREAT', KEYS[2 + (s - 1) * 3], expire_at)
    redis.call('EXPIREAT', KEYS[2 + (s - 1) * 3 + 1], expire_at)
  end
end

local reply = {#entries}
for e = 1, #entries do reply[e + 1] = entries[e] end
local offset = #entries + 1
for i = 1, #results do reply[offset + i] = results[i] end
return reply
