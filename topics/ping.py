"""Whether the cluster answers: the readiness check of the gateway and of the stream jobs."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaError


async def cluster_answers(client: Any, timeout_s: float) -> bool:
    """Whether the cluster's metadata, asked through `client` (an aiokafka client: a
    producer's, or one of its own), names a broker within `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            metadata = await client.fetch_all_metadata()
    except (KafkaError, TimeoutError, OSError):
        return False
    return bool(metadata.brokers())
