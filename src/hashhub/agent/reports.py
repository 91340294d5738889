"""Report drafts for confirmed matches, shaped after NCMEC CyberTipline reports.

A draft holds what a report needs from the agent's side: when the incident happened, the file's
hashes, the industry classification, whether a person at the platform viewed the file, and which
lists and contributors it matched. The reporter's own details (who uploaded, account data) are left
for a person to fill in. Nothing here sends anything: drafts are exported, then reviewed and filed by
people through the platform's own reporting channel.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hashhub.agent.models import Decision, Report, Review, utcnow
from hashhub.agent.store import Store

SCHEMA = "hashhub.report-draft/1"
#: industry classification severity, most severe first (used to pick the draft's classification).
INDUSTRY_ORDER = ("A1", "A2", "B1", "B2")


class ReportNotFound(LookupError):
    """No report draft with that id."""


def _classification(matches: list[dict[str, Any]]) -> dict[str, Any] | None:
    def rank(m: dict[str, Any]) -> tuple[int, int]:
        value = str((m.get("classification") or {}).get("value", "")).upper()
        order = INDUSTRY_ORDER.index(value) if value in INDUSTRY_ORDER else len(INDUSTRY_ORDER)
        return order, -int(m.get("verifications") or 0)

    graded = [m for m in matches if m.get("classification")]
    return min(graded, key=rank)["classification"] if graded else None


def build(decision: Decision, *, viewed: bool, review: Review | None = None) -> dict[str, Any]:
    matches = decision.matches or []
    return {
        "schema": SCHEMA,
        "status": "draft",
        "sent": False,
        "incident": {
            "time": decision.created_at.isoformat(),
            "type": "apparent child sexual abuse material (hash match)",
            "source": decision.source,
        },
        "file": {
            "name": decision.file,
            "hashes": decision.hashes,
            "viewed_by_person": viewed,
            "industry_classification": _classification(matches),
        },
        "matched": [
            {
                "hub": m.get("hub"),
                "list": m.get("list"),
                "item": m.get("item"),
                "signal": m.get("signal"),
                "distance": m.get("distance"),
                "contributors": m.get("contributors", []),
                "verifications": m.get("verifications"),
            }
            for m in matches
        ],
        "review": None
        if review is None
        else {
            "reviewer": review.reviewer,
            "decided_at": review.decided_at.isoformat() if review.decided_at else None,
        },
        "policy": {"action": decision.action, "rule": decision.rule},
        "to_complete_by_reporter": ["reporting_person", "uploader", "upload_ip_and_time", "account"],
    }


def draft(s: Session, decision: Decision, *, viewed: bool, review: Review | None = None) -> Report:
    """Create (or refresh) the draft for a decision inside the caller's transaction."""
    report = s.scalar(select(Report).where(Report.decision_id == decision.id))
    body = build(decision, viewed=viewed, review=review)
    if report is None:
        report = Report(decision_id=decision.id, draft=body, created_at=utcnow())
        s.add(report)
    else:
        report.draft = body
    s.flush()
    return report


def insert_draft(s: Session, decision: Decision, *, viewed: bool) -> int:
    """The draft for a decision just recorded (so it has none yet); returns the report id."""
    table = Report.__table__
    row = {"decision_id": decision.id, "draft": build(decision, viewed=viewed), "created_at": utcnow()}
    return s.execute(insert(table).returning(table.c.id), row).scalar_one()


def _public(report: Report) -> dict[str, Any]:
    return {
        **report.draft,
        "id": report.id,
        "decision": report.decision_id,
        "created_at": report.created_at.isoformat(),
        "exported_at": report.exported_at.isoformat() if report.exported_at else None,
    }


def list_reports(store: Store, *, unexported_only: bool = False) -> list[dict[str, Any]]:
    query = select(Report).order_by(Report.id)
    if unexported_only:
        query = query.where(Report.exported_at.is_(None))
    with store.session() as s:
        return [_public(r) for r in s.scalars(query)]


def get_report(store: Store, report_id: int) -> dict[str, Any]:
    with store.session() as s:
        report = s.get(Report, report_id)
        if report is None:
            raise ReportNotFound(f"There is no report draft #{report_id}.")
        return _public(report)


def export(store: Store, *, unexported_only: bool = False) -> list[dict[str, Any]]:
    """The drafts as JSON-ready dicts, marked exported (exporting again is allowed)."""
    with store.writing() as s:
        query = select(Report).order_by(Report.id)
        if unexported_only:
            query = query.where(Report.exported_at.is_(None))
        rows = list(s.scalars(query))
        now = utcnow()
        for row in rows:
            row.exported_at = now
        return [_public(r) for r in rows]
