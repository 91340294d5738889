"""Recording decisions, in one transaction per batch of files.

Only files that matched something are recorded: an unmatched upload tells nobody anything, and
keeping no trace of it is kinder to the platform's users (and keeps the hot path write-free). For a
matched file the same transaction writes the decision, a review entry (`review`), a report draft
(`block_and_report`) and the hits owed to each hub whose item matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hashhub.agent import outbox, reports
from hashhub.agent.models import Decision, Review, utcnow
from hashhub.agent.store import Store

if TYPE_CHECKING:
    from hashhub.agent.scanner import ScanResult


def record(store: Store, results: Sequence[ScanResult], source: str) -> None:
    matched = [r for r in results if r.matched]
    if not matched:
        return
    with store.writing() as s:
        for result in matched:
            body = result.as_dict()
            decision = Decision(
                source=source,
                file=result.file,
                hashes=result.hashes,
                matches=body["matches"],
                action=result.action,
                rule=result.verdict.rule,
                created_at=utcnow(),
            )
            s.add(decision)
            s.flush()
            result.decision_id = decision.id
            if result.action == "review":
                review = Review(decision_id=decision.id, status="pending")
                s.add(review)
                s.flush()
                result.review_id = review.id
            elif result.action == "block_and_report":
                result.report_id = reports.draft(s, decision, viewed=False).id
            for m in result.matches:
                outbox.queue(
                    s,
                    m.hub_id,
                    "hit",
                    m.meta.item_id,
                    {
                        "signal": m.signal,
                        "distance": m.distance,
                        "action": result.action,
                        "at": decision.created_at.isoformat(),
                    },
                )
