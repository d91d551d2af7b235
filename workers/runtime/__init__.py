"""The runtime every processor stands on: consume, decode, dedup, handle, publish, commit."""
