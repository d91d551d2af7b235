"""Leaderboards: score submissions applied to Redis sorted sets, one per board and period.

Modules, one concept each: definitions (the versioned boards file), periods (which period an
instant falls in), encoding (score + tie-break in one sorted-set score), keys (every Redis key),
scoring (the batch Lua script), journal and store (the durable MySQL record), closing (archive
at reset), reads (rank queries and their HTTP routes), processor (the runtime's Processor),
cli (`liveops leaderboards ...`).
"""
