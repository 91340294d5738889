"""The agent's settings, one object built by a factory (never at import time).

Values come from keyword arguments (the CLI's options), else environment variables, else defaults:
`HASHHUB_DB`, `HASHHUB_POLICY`, `HASHHUB_AGENT_KEY` (the key clients of the agent's own API present),
`HASHHUB_SYNC_INTERVAL`, `HASHHUB_MAX_UPLOAD_BYTES`.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hashhub.agent.db import DEFAULT_DB


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HASHHUB_", extra="ignore")

    db: str = DEFAULT_DB
    policy: Path | None = None
    agent_key: str = Field(default="", min_length=0)
    #: seconds between background syncs in `agent serve` (0 turns background sync off).
    sync_interval: float = Field(default=60.0, ge=0)
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    #: requests per second per key, by role (0: unlimited; "anonymous": no valid key, per address).
    #: JSON in HASHHUB_RATE_LIMITS; a burst of rate x rate_limit_burst_seconds is allowed.
    rate_limits: dict[str, float] = Field(default_factory=lambda: {"agent": 0.0, "anonymous": 200.0})
    rate_limit_burst_seconds: float = Field(2.0, gt=0)
    #: a bearer token that may read GET /metrics (besides the agent key); empty: none.
    metrics_token: str = ""
    #: where the matcher's saved files live (HASHHUB_STATE_DIR); empty: beside a SQLite store, none for
    #: a PostgreSQL one (every start then rebuilds from the store).
    state_dir: Path | None = None


def make_settings(**overrides: object) -> AgentSettings:
    """Settings from the environment with the given (non-None) overrides; a key is made if none."""
    settings = AgentSettings(**{k: v for k, v in overrides.items() if v is not None})
    if not settings.agent_key:
        settings.agent_key = "agent_" + secrets.token_urlsafe(24)
    return settings
