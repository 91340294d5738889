"""Request and response shapes (field names are the product contract in DESIGN.md).

Batch rows are validated one at a time against `ItemIn` so a bad row is reported with its index
instead of failing the whole request; the other models document and validate small payloads.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Label = str | int | float | bool | None


class Classification(BaseModel):
    scheme: str = Field(min_length=1, max_length=64, examples=["industry"])
    value: str = Field(min_length=1, max_length=64, examples=["A1"])


class Verification(BaseModel):
    reviewers: int = Field(0, ge=0, le=1000, description="independent reviewers who confirmed the grade")
    verified_by: list[str] = Field(default_factory=list, max_length=50)
    verified_at: datetime | None = None


class ItemIn(BaseModel):
    """One piece of media as the contributor knows it."""

    model_config = ConfigDict(extra="ignore")

    external_id: str | None = Field(None, min_length=1, max_length=200)
    content_type: Literal["image", "video"] = "image"
    classification: Classification
    verification: Verification = Field(default_factory=Verification)
    labels: dict[str, Label] = Field(default_factory=dict, max_length=64)
    fingerprints: dict[str, Any] = Field(
        min_length=1, max_length=32, description="signal name -> value", examples=[{"md5": "0" * 32}]
    )
    quality: dict[str, int] = Field(default_factory=dict, max_length=32)


class SubmitIn(BaseModel):
    # `list` is a field name here, so the builtin is spelt through `builtins` in this class.
    items: builtins.list[Any] = Field(description="ItemIn rows; each is validated on its own (see ItemIn)")
    list: str = Field(examples=["verified"])


class MatchIn(BaseModel):
    fingerprints: list[Any] = Field(description="one {signal: value, ...} object per query")
    radius: dict[str, float] | None = Field(None, description="per-signal distance overrides")


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
