"""Recording decisions, in one transaction per batch of files.

Only files that matched something are recorded: an unmatched upload tells nobody anything, and
keeping no trace of it is kinder to the platform's users (and keeps the hot path write-free). For a
matched file the same transaction writes the decision, a review entry (`review`), a report draft
(`block_and_report`) and the hits owed to each hub whose item matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from hashhub.agent import reports
from hashhub.agent.models import Decision, Outbox, Review, utcnow
from hashhub.agent.store import Store

if TYPE_CHECKING:
    from hashhub.agent.scanner import ScanResult


def record(store: Store, results: Sequence[ScanResult], source: str) -> None:
    """Record the matched files among `results` and set their decision/review/report ids."""
    matched = [r for r in results if r.matched]
    if not matched:
        return
    # Core statements, not ORM flushes: a backlog scan records thousands of rows per minute.
    decisions, reviews, outbox_rows = Decision.__table__, Review.__table__, Outbox.__table__
    hits: list[dict[str, Any]] = []
    with store.writing() as s:
        for result in matched:
            decision = Decision(
                source=source,
                file=result.file,
                hashes=result.hashes,
                matches=result.as_dict()["matches"],
                action=result.action,
                rule=result.verdict.rule,
                created_at=utcnow(),
            )
            values = {
                c: getattr(decision, c) for c in ("source", "file", "hashes", "matches", "action", "rule")
            }
            decision.id = s.execute(
                insert(decisions).returning(decisions.c.id), {**values, "created_at": decision.created_at}
            ).scalar_one()
            result.decision_id = decision.id
            if result.action == "review":
                result.review_id = s.execute(
                    insert(reviews).returning(reviews.c.id),
                    {
                        "decision_id": decision.id,
                        "status": "pending",
                        "viewed": False,
                        "created_at": utcnow(),
                    },
                ).scalar_one()
            elif result.action == "block_and_report":
                result.report_id = reports.insert_draft(s, decision, viewed=False)
            at = decision.created_at.isoformat()
            hits.extend(
                {
                    "hub_id": m.hub_id,
                    "kind": "hit",
                    "item_id": m.meta.item_id,
                    "payload": {
                        "signal": m.signal,
                        "distance": m.distance,
                        "action": result.action,
                        "at": at,
                    },
                    "created_at": decision.created_at,
                    "attempts": 0,
                }
                for m in result.matches
            )
        if hits:
            s.execute(insert(outbox_rows), hits)
