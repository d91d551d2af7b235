"""Live tests of the stream jobs (a package: conftest module names must not clash)."""
