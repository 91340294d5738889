"""The review queue: matches a person must look at before anything else happens.

`confirm` creates a report draft (recording whether the reviewer viewed the file) and queues
affirmative feedback; `reject` queues negative feedback with the reviewer's reason (a short code such
as `not_csam` or `wrong_match`, plus an optional note) for every hub whose item matched. Both are
final: a decided entry cannot be decided again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hashhub.agent import outbox, reports
from hashhub.agent.models import Decision, Hub, Review, utcnow
from hashhub.agent.store import Store

STATUSES = ("pending", "confirmed", "rejected")
#: the hub's feedback reason is a short code; the reviewer's free text travels as the note.
MAX_REASON = 64
MAX_NOTE = 2000
REJECT_REASONS = ("not_csam", "wrong_grade", "wrong_match", "other")


class ReviewError(ValueError):
    """A review request cannot be carried out; the message says why."""


class ReviewNotFound(ReviewError, LookupError):
    pass


def _public(review: Review, decision: Decision, report_id: int | None = None) -> dict[str, Any]:
    return {
        "id": review.id,
        "status": review.status,
        "created_at": review.created_at.isoformat(),
        "decided_at": review.decided_at.isoformat() if review.decided_at else None,
        "reviewer": review.reviewer,
        "reason": review.reason,
        "viewed": review.viewed,
        "decision": decision.id,
        "file": decision.file,
        "action": decision.action,
        "rule": decision.rule,
        "hashes": decision.hashes,
        "matches": decision.matches,
        "report": report_id,
    }


def list_reviews(store: Store, status: str | None = "pending", limit: int = 100) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise ReviewError(f"status must be one of {', '.join(STATUSES)}; got {status!r}.")
    query = select(Review, Decision).join(Decision, Decision.id == Review.decision_id).order_by(Review.id)
    if status is not None:
        query = query.where(Review.status == status)
    with store.session() as s:
        return [_public(r, d) for r, d in s.execute(query.limit(limit))]


def _pending(s: Session, review_id: int) -> tuple[Review, Decision]:
    review = s.get(Review, review_id)
    if review is None:
        raise ReviewNotFound(f"There is no review #{review_id}.")
    if review.status != "pending":
        raise ReviewError(f"Review #{review_id} was already {review.status}.")
    return review, s.get(Decision, review.decision_id)


def _queue_feedback(s: Session, decision: Decision, verdict: str, reason: str, note: str) -> None:
    hub_ids = {url: hub_id for hub_id, url in s.execute(select(Hub.id, Hub.url))}
    for m in decision.matches or []:
        hub_id = hub_ids.get(m.get("hub"))
        if hub_id is not None:
            payload = {"verdict": verdict, "reason": reason, "note": note}
            outbox.queue(s, hub_id, "feedback", m["item"], payload)


def confirm(
    store: Store, review_id: int, *, reviewer: str | None = None, viewed: bool = True
) -> dict[str, Any]:
    """The match is real: mark it confirmed, create the report draft, tell the hubs (affirmative)."""
    with store.writing() as s:
        review, decision = _pending(s, review_id)
        review.status, review.reviewer, review.viewed = "confirmed", reviewer, viewed
        review.decided_at = utcnow()
        report = reports.draft(s, decision, viewed=viewed, review=review)
        _queue_feedback(s, decision, "affirmative", "confirmed", "")
        return _public(review, decision, report.id)


def reject(
    store: Store, review_id: int, reason: str, *, note: str = "", reviewer: str | None = None
) -> dict[str, Any]:
    """The match is wrong: mark it rejected and queue negative feedback for each matched item."""
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError(
            "A rejection needs a reason (sent to the hub as negative feedback), "
            f"e.g. {', '.join(REJECT_REASONS)}."
        )
    if len(reason) > MAX_REASON:
        raise ReviewError(
            f"The reason is a short code of at most {MAX_REASON} characters (e.g. not_csam); "
            "put longer text in the note."
        )
    if len(note) > MAX_NOTE:
        raise ReviewError(f"The note is {len(note)} characters long; the limit is {MAX_NOTE}.")
    with store.writing() as s:
        review, decision = _pending(s, review_id)
        review.status, review.reviewer = "rejected", reviewer
        review.reason = reason if not note else f"{reason}: {note}"
        review.decided_at = utcnow()
        _queue_feedback(s, decision, "negative", reason, note)
        return _public(review, decision)
