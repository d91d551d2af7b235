"""Stateful windowed jobs on faust-streaming (`liveops stream ...`).

Side jobs whose state is a windowed table (per-player velocity, community progress of a live
event); never the per-event path of the effect processors, which run on workers/runtime.
Pure logic lives beside the faust glue (velocity.py beside velocity_job.py) so that it is
unit-tested without a broker.
"""
