"""Request and response shapes (field names are the product contract in DESIGN.md).

Batch rows are validated one at a time against `ItemIn` so a bad row is reported with its index
instead of failing the whole request; the other models document and validate small payloads.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import (
    Annotated,
    Any,
    Literal,
    Required,  # pydantic needs these on Python 3.11
)

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from typing_extensions import TypedDict


def _within_64_bits(value: object) -> object:
    # Documents are serialised with orjson, which refuses larger integers; refuse them here, with the
    # field named, rather than let the union turn them into floats.
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise ValueError("integers must fit in 64 bits")
    return value


Label = Annotated[str | int | float | bool | None, BeforeValidator(_within_64_bits)]


Short = Annotated[str, Field(min_length=1, max_length=64)]


class Classification(TypedDict):
    scheme: Annotated[Short, Field(examples=["industry"])]
    value: Annotated[Short, Field(examples=["A1"])]


class Verification(TypedDict, total=False):
    #: independent reviewers who confirmed the grade
    reviewers: Annotated[int, Field(ge=0, le=1000)]
    verified_by: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)]
    verified_at: datetime | None


class ItemIn(TypedDict, total=False):
    """One piece of media as the contributor knows it (a row of a batch; unknown keys are ignored).

    A TypedDict rather than a model: validating 10,000 rows this way is many times faster."""

    external_id: Annotated[str, Field(min_length=1, max_length=200)] | None
    content_type: Literal["image", "video"]
    classification: Required[Classification]
    verification: Verification
    labels: Annotated[dict[str, Label], Field(max_length=64)]
    #: signal name -> value, e.g. {"pdq": "<64 hex>", "md5": "<32 hex>"}
    fingerprints: Required[Annotated[dict[str, Any], Field(min_length=1, max_length=32)]]
    quality: Annotated[dict[str, int], Field(max_length=32)]


class SubmitIn(BaseModel):
    # `list` is a field name here, so the builtin is spelt through `builtins` in this class.
    items: builtins.list[Any] = Field(description="ItemIn rows; each is validated on its own (see ItemIn)")
    list: str = Field(examples=["verified"])


class MatchIn(BaseModel):
    fingerprints: list[Any] = Field(description="one {signal: value, ...} object per query")
    radius: dict[str, float] | None = Field(None, description="per-signal distance overrides")


class MatchHit(BaseModel):
    """One listed item a query matched (more fields may be added)."""

    model_config = ConfigDict(extra="allow")
    item: str
    signal: str
    distance: float
    classification: dict[str, str]
    contributors: list[str]
    verifications: int
    status: str


class MatchResult(BaseModel):
    index: int
    matches: list[MatchHit]


class MatchOut(BaseModel):
    """The answer of `POST /api/v1/match` (documentation only: the route writes it with orjson)."""

    results: list[MatchResult]


class FeedbackIn(BaseModel):
    verdict: Literal["affirmative", "negative"]
    reason: str = Field(min_length=1, max_length=64, examples=["not_csam", "wrong_grade", "confirmed"])
    note: str = Field("", max_length=2000)


class HitIn(BaseModel):
    count: int = Field(1, ge=1, le=1_000_000)


class ReasonIn(BaseModel):
    reason: str = Field("", max_length=2000)


class OrgIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[Literal["admin", "contributor", "member"]] = Field(min_length=1)
    kind: str = Field("", max_length=50)


class KeyIn(BaseModel):
    scopes: list[Literal["admin", "contributor", "member"]] | None = None
    label: str = Field("", max_length=200)


class ListIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    read: list[str] = Field(default_factory=list)
    write: list[str] = Field(default_factory=list)


class GrantIn(BaseModel):
    org: str
    read: bool = False
    write: bool = False


class SchemeIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    values: dict[str, str] | list[str]
