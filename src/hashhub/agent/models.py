"""The agent's tables. Only hashes and metadata live here: uploaded media is never stored.

Item identity is (hub, hub's item id); `items.id` is a local integer that the in-memory indexes use.
Every write to items bumps `rev` from the single `agent_state` counter row, so any replica sharing the
database can follow the store's changes in order (`Store.changes_since`). Deleted items stay as
tombstone rows (status `deleted`, no fingerprints) for the same reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class AgentState(Base):
    """One row: the store-wide revision counter."""

    __tablename__ = "agent_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rev: Mapped[int] = mapped_column(BigInteger, default=0)
    #: a random id per store (migration 0002): saved matcher files of another store are never trusted.
    store_id: Mapped[str | None] = mapped_column(String(36))


class Hub(Base):
    """A followed hub, its credentials, its feed cursor and how the last sync went."""

    __tablename__ = "agent_hubs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(500), unique=True)
    api_key: Mapped[str] = mapped_column(String(500))
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    bootstrapped: Mapped[bool] = mapped_column(default=False)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Item(Base):
    __tablename__ = "agent_items"
    __table_args__ = (
        UniqueConstraint("hub_id", "item_id", name="uq_agent_items_hub_item"),
        Index("ix_agent_items_rev", "rev"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    hub_id: Mapped[int] = mapped_column(ForeignKey("agent_hubs.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(200))
    list_name: Mapped[str | None] = mapped_column(String(200))
    contributor: Mapped[str | None] = mapped_column(String(200))
    contributors: Mapped[list[Any]] = mapped_column(default=list)
    external_id: Mapped[str | None] = mapped_column(String(500))
    content_type: Mapped[str | None] = mapped_column(String(50))
    classification: Mapped[dict[str, Any]] = mapped_column(default=dict)
    verifications: Mapped[int] = mapped_column(Integer, default=0)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: `active`, `disputed` (both match) or `deleted` (a tombstone: withdrawn at the hub).
    status: Mapped[str] = mapped_column(String(20))
    rev: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Fingerprint(Base):
    __tablename__ = "agent_fingerprints"
    __table_args__ = (Index("ix_agent_fingerprints_value", "signal", "value"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    item_pk: Mapped[int] = mapped_column(ForeignKey("agent_items.id", ondelete="CASCADE"), index=True)
    signal: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)


class Decision(Base):
    """What the policy decided for one scanned file or fingerprint set (recorded for audit)."""

    __tablename__ = "agent_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(20))
    file: Mapped[str | None] = mapped_column(String(1000))
    hashes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    matches: Mapped[list[Any]] = mapped_column(default=list)
    action: Mapped[str] = mapped_column(String(30))
    rule: Mapped[str | None] = mapped_column(String(200))


class Review(Base):
    """A decision waiting for (or given) a human verdict."""

    __tablename__ = "agent_reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("agent_decisions.id"), unique=True)
    #: `pending`, `confirmed` or `rejected`.
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    reviewer: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    viewed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Report(Base):
    """A CyberTipline-style report draft; exported by a person, never sent automatically."""

    __tablename__ = "agent_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("agent_decisions.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    draft: Mapped[dict[str, Any]] = mapped_column(default=dict)
    exported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Outbox(Base):
    """Hits and feedback waiting to reach their hub; sent (and retried) by sync."""

    __tablename__ = "agent_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hub_id: Mapped[int] = mapped_column(ForeignKey("agent_hubs.id", ondelete="CASCADE"), index=True)
    #: `hit` or `feedback`.
    kind: Mapped[str] = mapped_column(String(20))
    item_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
