"""The processors and the shared runtime under them, and the `liveops` command."""
