"""Match fingerprints, or an uploaded image hashed in memory, against the pool (members)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hashhub.hub import match
from hashhub.hub.api.deps import Caller, HubDep, json_response
from hashhub.hub.schemas import MatchIn

router = APIRouter(prefix="/api/v1/match", tags=["match"])


@router.post("", summary="Match up to 10,000 fingerprints (members)")
def match_fingerprints(body: MatchIn, hub: HubDep, caller: Caller) -> Response:
    return json_response(match.match(hub, caller, body.fingerprints, body.radius))
