"""Schemathesis against the hub's and the agent's OpenAPI, in-process: no 5xx, answers match the schema.

Each API operation gets a bounded number of generated requests (valid and invalid) with a key that
may call it, so the whole run stays within a minute or two on a shared machine.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from hashhub.agent.app import create_app as create_agent_app
from hashhub.agent.runtime import AgentRuntime
from hashhub.agent.settings import make_settings
from hashhub.hub import orgs
from hashhub.hub.app import create_app as create_hub_app
from hashhub.hub.settings import HubSettings

from .conftest import AGENT_KEY, bearer

EXAMPLES = 12
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no example database written into the checkout
    suppress_health_check=list(HealthCheck),
)


def _hub_app(tmp: Path):
    app = create_hub_app(HubSettings(db=f"sqlite:///{tmp / 'fuzz-hub.db'}"))
    engine = app.state.hub.engine
    admin = orgs.create_org(engine, "fuzz-admin", ["admin", "contributor", "member"])["api_key"]
    orgs.create_list(engine, "verified", read=["fuzz-admin"], write=["fuzz-admin"])
    return app, admin


def _agent_app(tmp: Path):
    settings = make_settings(db=str(tmp / "fuzz-agent.db"), agent_key=AGENT_KEY, sync_interval=0)
    return create_agent_app(AgentRuntime(settings), background_sync=False)


_TMP = Path(__import__("tempfile").mkdtemp(prefix="hashhub-fuzz-"))
HUB_APP, HUB_KEY = _hub_app(_TMP)
AGENT_APP = _agent_app(_TMP)
hub_schema = schemathesis.openapi.from_asgi("/openapi.json", HUB_APP)
agent_schema = schemathesis.openapi.from_asgi("/openapi.json", AGENT_APP)


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield


@hub_schema.parametrize()
@FUZZ_SETTINGS
def test_hub_api_never_fails_with_5xx(case) -> None:
    # The NCMEC emulation answers in XML, as the peer protocol requires, while FastAPI documents
    # JSON for it; everything else about those answers is still checked.
    checks = CHECKS if not case.path.startswith("/compat/ncmec") else CHECKS[:2]
    case.call_and_validate(headers=bearer(HUB_KEY), checks=checks)


@agent_schema.parametrize()
@FUZZ_SETTINGS
def test_agent_api_never_fails_with_5xx(case) -> None:
    case.call_and_validate(headers=bearer(AGENT_KEY), checks=CHECKS)
