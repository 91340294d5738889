"""Hub settings: one object, from HASHHUB_* environment variables or built explicitly by tests/CLI."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HASHHUB_", extra="ignore")

    db: str = Field("sqlite:///hashhub.db", description="SQLAlchemy URL or SQLite file path")
    #: negative feedback from this many distinct members marks an item disputed.
    dispute_threshold: int = Field(2, ge=1)
    #: PDQ items within this distance of each other belong to one cluster.
    cluster_pdq_radius: int = Field(10, ge=0, le=64)
    match_pdq_radius: int = Field(31, ge=0, le=128)
    max_batch: int = Field(10_000, ge=1)
    max_match: int = Field(10_000, ge=1)
    feed_max_limit: int = Field(10_000, ge=1)
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    #: a verified key is trusted from memory this long (revocation takes effect within it).
    key_cache_seconds: float = Field(10.0, ge=0)
    #: requests per second per key, by role (0: unlimited; "anonymous": no valid key, per address).
    #: JSON in HASHHUB_RATE_LIMITS; a burst of rate x rate_limit_burst_seconds is allowed.
    rate_limits: dict[str, float] = Field(
        default_factory=lambda: {"admin": 0.0, "contributor": 200.0, "member": 1000.0, "anonymous": 200.0}
    )
    rate_limit_burst_seconds: float = Field(2.0, gt=0)
    #: a bearer token that may read GET /metrics (besides admin keys); empty: none.
    metrics_token: str = ""
    #: where saved pool files live (index files, columns, clusters, the cursor they are valid at):
    #: empty = "<database file>.pool" beside a SQLite file and none for other databases (give a
    #: directory for PostgreSQL); "off" = never save or load them.
    pool_dir: str = ""
    #: a process saves a fresh pool snapshot once the change log is this many changes past the
    #: last one (only the process holding the directory's lock saves; the others load it).
    pool_save_changes: int = Field(10_000, ge=1)
    #: ... but not sooner than this many seconds after its last save or load (a bulk import
    #: would otherwise keep one process saving back to back).
    pool_save_min_seconds: float = Field(30.0, ge=0)
    #: a process that had to build its pool from the database saves it at once from this many items.
    pool_save_min_items: int = Field(10_000, ge=0)
    #: ... and from this many items builds it in a process of its own (hub/poolbuild.py), so the
    #: build's freed memory never stays with the server (0: always; a huge number: never).
    pool_build_process_items: int = Field(100_000, ge=0)
    #: match activity is audited as one chained record per key per this many seconds, written in the
    #: background (0: one record per request, written before the answer).
    audit_match_window_seconds: float = Field(1.0, ge=0, le=60)
    #: FastAPI's native OpenTelemetry (spans, metrics and logs through the global providers). Off
    #: by default: the hub has its own /metrics and JSON request log, and the per-request check
    #: costs ~10 us of a ~400 us match request. HASHHUB_OPENTELEMETRY=true turns it on.
    opentelemetry: bool = False
