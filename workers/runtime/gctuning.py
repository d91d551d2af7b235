"""The garbage collector's settings for a worker process.

A batch allocates thousands of short-lived objects (records, envelopes, outcomes), so with
Python's default threshold (700 allocations) the collector runs several times per batch, and
every tenth of those runs scans older objects too: the whole heap the worker built at start
(modules, definitions, client buffers). Those full scans are the worker's longest pauses
(p99 of the null processor: ~130 ms with the defaults in most runs, ~20 ms tuned). Freezing
what exists after start moves it out of the collector's sight; a larger first threshold makes
collections rarer. Reference counting still frees almost everything at once; only cycles wait.
"""

from __future__ import annotations

import gc

from workers.runtime.settings import RuntimeSettings


def tune_gc(settings: RuntimeSettings) -> None:
    """Apply `gc_gen0_threshold` (0: leave Python's) and freeze what the start built."""
    if settings.gc_gen0_threshold == 0:
        return
    _, gen1, gen2 = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(settings.gc_gen0_threshold, gen1, gen2)
