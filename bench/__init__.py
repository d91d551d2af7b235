"""Benchmarks: `liveops bench NAME`, one JSON line per run."""
