"""App-wide switches in HubSettings that change what every request does."""

from __future__ import annotations

import pytest

from hashhub.hub.app import create_app
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings


@pytest.mark.parametrize(("enabled", "expected"), [(False, False), (True, True)])
def test_fastapi_native_telemetry_follows_the_setting(tmp_path, enabled, expected) -> None:
    # Off by default (the hub has its own metrics and request log); an operator can turn it on.
    hub = Hub(HubSettings(db=str(tmp_path / "hub.db"), opentelemetry=enabled))
    try:
        app = create_app(hub=hub)
        config = app._telemetry  # FastAPI keeps no public accessor for it
        assert (config["tracing"], config["metrics"], config["logs"]) == (expected,) * 3
    finally:
        hub.close()
