"""The velocity job in a child process, as `liveops stream velocity` runs it, with the test's
settings: `python -m tests.integration.streams.velocity_child KAFKA_JSON VELOCITY_JSON PORT
LIVENESS_STALE_S`.

The command reads its settings from LIVEOPS_* variables; this launcher hands the same
run_velocity() the test's own settings instead, and a liveness stale limit of the test's choice.
"""

from __future__ import annotations

import sys

from topics.settings import KafkaSettings
from workers.logs import configure_logging
from workers.streams.settings import VelocitySettings
from workers.streams.velocity_job import run_velocity


def main() -> None:
    kafka_json, velocity_json, metrics_port, liveness_stale_s = sys.argv[1:5]
    configure_logging("info", "json")
    run_velocity(
        KafkaSettings.model_validate_json(kafka_json),
        VelocitySettings.model_validate_json(velocity_json),
        metrics_port=int(metrics_port),
        liveness_stale_s=float(liveness_stale_s),
        log_level="info",
    )


if __name__ == "__main__":
    main()
