"""A faust App configured from our settings, the same way for every stream job.

The only place that translates KafkaSettings into faust's own options. Switches that the
embedded Tansu broker needs (and that are harmless on Apache Kafka) are set here once:
- no leader-election topic (`topic_disable_leader`): we do not use faust's leader features;
- only internal topics (table changelogs) are declared by faust; input and output topics come
  from the catalog (`liveops topics apply`), with their partition counts;
- no idempotent producer and no transactions (faust enables them only for exactly_once, which
  we never ask for);
- no faust web server: the job serves its own /metrics, /healthz and /readyz (health.py);
- optionally one record per producer batch: Tansu reports a partition's end offset as the
  start of its last batch, and faust restores tables by reading changelogs up to that end;
- a table manager whose recovery holds the input streams until they are sought back to their
  committed offsets (recovery.py: a faust race that drops a record after a restart).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import faust
from faust.types.auth import CredentialsT

from topics.settings import KafkaSettings
from workers.streams.recovery import SeekFirstTableManager


def broker_urls(kafka: KafkaSettings) -> list[str]:
    """faust wants one kafka:// URL per bootstrap server."""
    return [f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")]


def credentials_for(kafka: KafkaSettings) -> CredentialsT | None:
    """faust credentials matching KafkaSettings' security protocol; None for PLAINTEXT."""
    context = kafka.ssl_context()
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            ssl_context=context,
            mechanism=kafka.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def build_faust_app(
    kafka: KafkaSettings,
    *,
    app_id: str,
    partitions: int,
    auto_offset_reset: Literal["earliest", "latest"],
    commit_interval_s: float,
    session_timeout_s: float,
    rebalance_timeout_s: float,
    one_record_per_batch: bool,
    data_dir: Path,
) -> faust.App:
    """An App whose internal topics (changelogs) get `partitions` partitions.

    `partitions` must be the partition count of the job's inputs: faust writes a table update
    to the changelog partition of the input record that caused it, and after a rebalance
    restores that changelog partition on whoever owns the input partition.
    """
    extra: dict[str, Any] = {}
    if one_record_per_batch:
        # A batch holds one record when every record is larger than the batch size.
        extra["producer_max_batch_size"] = 1
    return faust.App(
        app_id,
        broker=broker_urls(kafka),
        broker_client_id=kafka.client_id,
        broker_credentials=credentials_for(kafka),
        broker_request_timeout=kafka.request_timeout_ms / 1000,
        broker_commit_interval=commit_interval_s,
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=session_timeout_s / 3,
        broker_rebalance_timeout=rebalance_timeout_s,
        consumer_auto_offset_reset=auto_offset_reset,
        producer_acks=-1,
        processing_guarantee="at_least_once",
        topic_allow_declare=True,
        topic_disable_leader=True,
        topic_partitions=partitions,
        topic_replication_factor=kafka.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        datadir=str(data_dir),
        web_enabled=False,
        TableManager=SeekFirstTableManager,
        **extra,
    )
