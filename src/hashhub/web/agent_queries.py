"""Read-only queries the agent's pages need beyond its services: bounded, newest-first pages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from hashhub.agent.models import Decision, Outbox, Report, Review
from hashhub.agent.store import Store

PAGE = 50


def recent_decisions(store: Store, before: int | None = None) -> list[dict[str, Any]]:
    """Scans that matched (unmatched files leave no trace), newest first."""
    query = select(Decision).order_by(Decision.id.desc()).limit(PAGE)
    if before is not None:
        query = query.where(Decision.id < before)
    with store.session() as s:
        return [
            {
                "id": d.id,
                "at": d.created_at.isoformat(),
                "source": d.source,
                "file": d.file,
                "action": d.action,
                "rule": d.rule,
                "matches": len(d.matches or []),
            }
            for d in s.scalars(query)
        ]


def recent_reports(store: Store, before: int | None = None) -> list[dict[str, Any]]:
    query = select(Report).order_by(Report.id.desc()).limit(PAGE)
    if before is not None:
        query = query.where(Report.id < before)
    with store.session() as s:
        return [
            {
                "id": r.id,
                "decision": r.decision_id,
                "created_at": r.created_at.isoformat(),
                "exported_at": r.exported_at.isoformat() if r.exported_at else None,
                "draft": r.draft,
            }
            for r in s.scalars(query)
        ]


def review_counts(store: Store) -> dict[str, int]:
    with store.session() as s:
        return dict(s.execute(select(Review.status, func.count()).group_by(Review.status)).all())


def unsent(store: Store) -> dict[int, int]:
    """Hits and feedback still waiting to reach each hub (by hub id)."""
    with store.session() as s:
        return dict(
            s.execute(
                select(Outbox.hub_id, func.count()).where(Outbox.sent_at.is_(None)).group_by(Outbox.hub_id)
            ).all()
        )
