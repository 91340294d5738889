"""Report drafts over HTTP: list, read one, export (nothing is ever sent anywhere)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from hashhub.agent import reports
from hashhub.agent.api.deps import Authorised, RowId, Runtime

router = APIRouter(prefix="/reports", tags=["reports"], dependencies=[Authorised])


@router.get("")
def list_reports(runtime: Runtime, unexported: bool = Query(False)) -> dict[str, Any]:
    return {"reports": reports.list_reports(runtime.store, unexported_only=unexported)}


@router.post("/export")
def export(runtime: Runtime, unexported: bool = Query(False)) -> dict[str, Any]:
    """The drafts as JSON, marked exported; a person files them through the platform's channel."""
    return {"reports": reports.export(runtime.store, unexported_only=unexported)}


@router.get("/{report_id}")
def get_report(report_id: RowId, runtime: Runtime) -> dict[str, Any]:
    return reports.get_report(runtime.store, report_id)
