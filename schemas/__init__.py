"""The protobuf contracts: one Envelope for every event, and its codec.

Generated code lives in `schemas/liveops/v1/`; regenerate it with `make proto`.
"""

from schemas.liveops.v1 import (
    actions_pb2,
    envelope_pb2,
    leaderboards_pb2,
    notifications_pb2,
    purchases_pb2,
    rewards_pb2,
)
from schemas.liveops.v1.envelope_pb2 import ClientInfo, Envelope, TraceContext

__all__ = [
    "ClientInfo",
    "Envelope",
    "TraceContext",
    "actions_pb2",
    "envelope_pb2",
    "leaderboards_pb2",
    "notifications_pb2",
    "purchases_pb2",
    "rewards_pb2",
]
