"""Settings: services inherit the common config; a renamed setting is still read by its old name."""

from __future__ import annotations

import pytest
from pydantic_settings import SettingsConfigDict

from musicspace_shared.settings import CommonSettings


class DemoSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")

    catalog_check_s: float = 5.0


def test_a_service_prefix_reads_the_common_per_service_fields(monkeypatch) -> None:
    monkeypatch.setenv("DEMO_CATALOG_CHECK_S", "7")
    monkeypatch.setenv("DEMO_CPU_WORKERS", "3")
    settings = DemoSettings()
    assert settings.catalog_check_s == 7.0 and settings.cpu_workers == 3
    assert DemoSettings.model_config["extra"] == "ignore"  # inherited, not repeated


def test_the_old_name_still_applies_with_a_warning(monkeypatch) -> None:
    monkeypatch.setenv("DEMO_CATALOG_REFRESH_S", "9")
    with pytest.warns(DeprecationWarning, match="DEMO_CATALOG_CHECK_S"):
        assert DemoSettings().catalog_check_s == 9.0
    monkeypatch.setenv("DEMO_CATALOG_CHECK_S", "2")
    assert DemoSettings().catalog_check_s == 2.0  # the current name wins
