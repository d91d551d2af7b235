"""Integration tests of the leaderboards (a package: conftest module names must not clash)."""
