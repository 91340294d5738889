"""Items: batch submit, read one, feedback, hits, confirm, withdraw."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Query, Response

from hashhub.hub import feedback, ingest
from hashhub.hub.api.deps import Caller, HubDep, ItemId, json_response
from hashhub.hub.schemas import FeedbackIn, HitIn, ReasonIn, SubmitIn

router = APIRouter(prefix="/api/v1/items", tags=["items"])


@router.post("", summary="Submit up to 10,000 graded items to a list (contributors)")
def submit(
    body: SubmitIn,
    hub: HubDep,
    caller: Caller,
    background: BackgroundTasks,
    partial: bool = Query(False, description="write the valid rows and list the rejected ones"),
) -> Response:
    result = ingest.submit(hub, caller, body.list, body.items, partial=partial)
    background.add_task(hub.refresh)  # index the new items now rather than on the next match
    return json_response(result)


@router.get("/{item_id}", summary="One item (readers of its list, or its contributor)")
def get_item(item_id: ItemId, hub: HubDep, caller: Caller) -> Response:
    return json_response(feedback.item_view(hub, caller, item_id))


@router.post("/{item_id}/feedback", summary="Affirmative or negative feedback (members)")
def give_feedback(item_id: ItemId, body: FeedbackIn, hub: HubDep, caller: Caller) -> Response:
    return json_response(feedback.give_feedback(hub, caller, item_id, body.verdict, body.reason, body.note))


@router.post("/{item_id}/hits", summary="Record matches acted on (members)")
def record_hit(item_id: ItemId, hub: HubDep, caller: Caller, body: HitIn | None = None) -> Response:
    return json_response(feedback.record_hit(hub, caller, item_id, (body or HitIn()).count))


@router.post("/{item_id}/withdraw", summary="Withdraw an item: a delete in the feed (its contributor)")
def withdraw(item_id: ItemId, hub: HubDep, caller: Caller, body: ReasonIn | None = None) -> Response:
    return json_response(feedback.withdraw(hub, caller, item_id, (body or ReasonIn()).reason))


@router.post("/{item_id}/confirm", summary="Stand by a disputed item (its contributor)")
def confirm(item_id: ItemId, hub: HubDep, caller: Caller, body: ReasonIn | None = None) -> Response:
    return json_response(feedback.confirm(hub, caller, item_id, (body or ReasonIn()).reason))
