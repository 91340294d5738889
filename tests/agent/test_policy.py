"""Policy: matches -> actions, from the built-in default or a TOML file; bad files fail clearly."""

from __future__ import annotations

import pytest

from hashhub.agent.matcher import ItemMeta, Match
from hashhub.agent.policy import Policy, PolicyError


def _match(
    kind: str = "exact", distance: int = 0, verifications: int = 2, status: str = "active", value="A1"
):
    meta = ItemMeta(
        hub="http://hub",
        item_id="i",
        list_name="verified",
        contributors=("hotline",),
        classification={"scheme": "industry", "value": value},
        verifications=verifications,
        status=status,
    )
    return Match(1, 1, meta, "md5" if kind == "exact" else "pdq", distance, kind)


@pytest.mark.parametrize(
    ("match", "action", "rule"),
    [
        (_match("exact"), "block_and_report", "exact-block-report"),
        (_match("perceptual", 12), "block_and_report", "near-block-report"),
        (_match("perceptual", 20), "block_and_report", "near-block-report"),
        (_match("perceptual", 21), "review", "far-block-review"),
        (_match("exact", status="disputed"), "review", "disputed-review"),
        (_match("exact", verifications=0), "review", "unverified-review"),
    ],
)
def test_default_policy(match: Match, action: str, rule: str) -> None:
    verdict = Policy.default().decide([match])
    assert (verdict.action, verdict.rule) == (action, rule)


def test_no_match_is_allowed_and_most_severe_action_wins() -> None:
    policy = Policy.default()
    assert policy.decide([]).action == "allow"
    verdict = policy.decide([_match("perceptual", 25), _match("exact")])
    assert verdict.action == "block_and_report"
    assert [a for a, _ in verdict.per_match] == ["review", "block_and_report"]


def test_custom_policy_file(tmp_path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        """
[defaults]
action = "block"

[[rules]]
name = "b-grades-review"
scheme = "industry"
classification = ["B1", "B2"]
action = "review"

[[rules]]
name = "trust-two-reviewers"
min_verifications = 2
match = "any"
max_distance = 10
action = "block_and_report"
"""
    )
    policy = Policy.load(path)
    assert policy.decide([_match(value="B2")]).action == "review"
    assert policy.decide([_match("perceptual", 8)]).rule == "trust-two-reviewers"
    assert policy.decide([_match("perceptual", 15)]).action == "block"  # no rule: [defaults]
    assert policy.decide([_match("exact", verifications=1)]).rule == "defaults"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rules]]\nname = "x"\naction = "delete"', "action must be one of"),
        ('[[rules]]\nname = "x"\naction = "block"\nmax_distanse = 3', "unknown keys ['max_distanse']"),
        ('[[rules]]\nname = "x"\nmatch = "fuzzy"\naction = "block"', "match must be one of"),
        ('[[rules]]\nname = "x"\nmax_distance = -1\naction = "block"', "whole number"),
        ('[[rules]]\nname = "x"', "needs an action"),
        ("[rules\n", "not valid TOML"),
        ('[default]\naction="block"', "unknown top-level keys"),
    ],
)
def test_bad_policy_files_name_the_problem(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=r"p\.toml") as info:
        Policy.load(path)
    assert message in str(info.value)


def test_missing_policy_file() -> None:
    with pytest.raises(PolicyError, match="Cannot read the policy file"):
        Policy.load("/nonexistent/policy.toml")
