"""Settings fail at start with one line naming the variable; secrets stay masked."""

from __future__ import annotations

import pytest

from workers.settings import SettingsError, load_settings


def test_defaults_point_at_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka.enable_idempotence is False


def test_nested_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEOPS_BATCH__REWARDS__MAX_RECORDS", "123")
    monkeypatch.setenv("LIVEOPS_KAFKA__ENABLE_IDEMPOTENCE", "true")
    settings = load_settings()
    assert settings.batch.rewards.max_records == 123
    assert settings.kafka.enable_idempotence is True


def test_unknown_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEOPS_KAFKA__BOOTSTRAP_SERVER", "x:1")
    with pytest.raises(SettingsError, match=r"^LIVEOPS_KAFKA__BOOTSTRAP_SERVER: unknown setting"):
        load_settings()


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEOPS_METRICS_PORT", "not-a-port")
    with pytest.raises(SettingsError, match=r"^LIVEOPS_METRICS_PORT: "):
        load_settings()


def test_sasl_without_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEOPS_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LIVEOPS_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    with pytest.raises(SettingsError, match="needs sasl_username and sasl_password"):
        load_settings()


def test_secrets_are_masked_when_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEOPS_MYSQL__DSN", "mysql://app:hunter2@db:3306/game")
    settings = load_settings()
    assert "hunter2" not in settings.model_dump_json()
    assert "hunter2" not in repr(settings)
    assert settings.mysql.dsn.get_secret_value().endswith("@db:3306/game")
