"""Policy: what to do with a file given what it matched.

A policy is an ordered list of rules read from TOML (stdlib `tomllib`). For each match the first rule
whose conditions all hold gives that match's action; the file's action is the most severe over its
matches (`block_and_report` > `block` > `review` > `allow`). A file that matched nothing is allowed;
a match no rule covers gets `[defaults] action`.

    [defaults]
    action = "review"

    [[rules]]
    name = "disputed items need a person"
    status = ["disputed"]           # active | disputed
    action = "review"

    [[rules]]
    name = "verified, exact or near"
    match = "any"                   # exact | perceptual | any
    max_distance = 20               # PDQ distance band (inclusive); exact matches have distance 0
    min_verifications = 1
    classification = ["A1", "A2", "B1", "B2"]   # values, or "*" (any); `scheme = "industry"` optional
    action = "block_and_report"

    [variants]                      # query variants of uploaded images (hashhub.variants)
    enabled = ["all"]               # names or groups: all, none, borders, mirrors, rotations, crops...
    action = "review"               # optional: every match found through a variant gets this action
    radii = { trimmed = 16 }        # optional: tighter (or looser) Hamming radius per variant

A rule may also name `variant = ["plain"]` (names or groups) to apply only to matches found that
way. Conditions left out hold for every match. Unknown keys and actions are errors naming the rule,
so a typo never silently changes what the agent does.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashhub.agent.matcher import Match
from hashhub.variants import GROUPS, PLAIN, VARIANT_NAMES, VariantOptions

ACTIONS = ("allow", "review", "block", "block_and_report")
SEVERITY = {name: rank for rank, name in enumerate(ACTIONS)}
MATCH_TYPES = ("exact", "perceptual", "any")
RULE_KEYS = {
    "name",
    "action",
    "match",
    "min_distance",
    "max_distance",
    "min_verifications",
    "max_verifications",
    "classification",
    "scheme",
    "status",
    "list",
    "variant",
}
VARIANT_KEYS = {"enabled", "action", "radii"}
VARIANT_ORDER = list(VARIANT_NAMES)

DEFAULT_POLICY_TOML = """\
# hashhub agent policy (the built-in default). First matching rule wins per match; the file gets the
# most severe action over all its matches. Actions: block_and_report, block, review, allow.

[defaults]
action = "review"               # a match that no rule below covers

[[rules]]
name = "disputed-review"        # another member disputed the item: a person decides
status = ["disputed"]
action = "review"

[[rules]]
name = "unverified-review"      # nobody has verified the grading yet
max_verifications = 0
action = "review"

[[rules]]
name = "exact-block-report"     # same bytes as a verified item
match = "exact"
action = "block_and_report"

[[rules]]
name = "near-block-report"      # visually near-identical to a verified item
match = "perceptual"
max_distance = 20
action = "block_and_report"

[[rules]]
name = "far-block-review"       # PDQ distance 21-31: likely the same picture, but let a person look
match = "perceptual"
min_distance = 21
action = "review"

[variants]
enabled = ["all"]               # scan images as-is AND trimmed, flipped, turned, crop-padded
# action = "review"             # uncomment: a match found only through a variant goes to a person
"""


class PolicyError(ValueError):
    """A policy file is malformed; the message names the file and the rule."""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    action: str
    match: str = "any"
    min_distance: int | None = None
    max_distance: int | None = None
    min_verifications: int | None = None
    max_verifications: int | None = None
    classification: frozenset[str] | None = None
    scheme: str | None = None
    status: frozenset[str] | None = None
    lists: frozenset[str] | None = None
    variants: frozenset[str] | None = None

    def applies(self, m: Match) -> bool:
        if self.match != "any" and m.match_type != self.match:
            return False
        if self.variants is not None and m.variant not in self.variants:
            return False
        if self.min_distance is not None and m.distance < self.min_distance:
            return False
        if self.max_distance is not None and m.distance > self.max_distance:
            return False
        verifications = m.meta.verifications
        if self.min_verifications is not None and verifications < self.min_verifications:
            return False
        if self.max_verifications is not None and verifications > self.max_verifications:
            return False
        cls = m.meta.classification
        if self.scheme is not None and str(cls.get("scheme", "")).lower() != self.scheme:
            return False
        if self.classification is not None and str(cls.get("value", "")).upper() not in self.classification:
            return False
        if self.status is not None and m.meta.status not in self.status:
            return False
        return self.lists is None or (m.meta.list_name or "") in self.lists


@dataclass(frozen=True, slots=True)
class Verdict:
    """The action for one file, and which rule gave it (None: nothing matched)."""

    action: str
    rule: str | None
    per_match: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...]
    default_action: str = "review"
    source: str = "built-in default"
    #: which query variants scans compute and match, within which radii
    variants: VariantOptions = field(default_factory=VariantOptions)
    #: the action for every match found through a variant (None: the rules decide, as for plain)
    variant_action: str | None = None

    def decide(self, matches: Sequence[Match]) -> Verdict:
        if not matches:
            return Verdict("allow", None)
        per_match = tuple(self._one(m) for m in matches)
        action, rule = max(per_match, key=lambda ar: SEVERITY[ar[0]])
        return Verdict(action, rule, per_match)

    def _one(self, m: Match) -> tuple[str, str]:
        if self.variant_action is not None and m.variant != PLAIN:
            return self.variant_action, "variants"
        for rule in self.rules:
            if rule.applies(m):
                return rule.action, rule.name
        return self.default_action, "defaults"

    @classmethod
    def default(cls) -> Policy:
        return cls.from_toml(DEFAULT_POLICY_TOML)

    @classmethod
    def load(cls, path: str | Path | None) -> Policy:
        if path is None:
            return cls.default()
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"Cannot read the policy file {file}: {exc.strerror}.") from None
        return cls.from_toml(text, source=str(file))

    @classmethod
    def from_toml(cls, text: str, source: str = "built-in default") -> Policy:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{source}: not valid TOML: {exc}") from None
        unknown = set(data) - {"defaults", "rules", "variants"}
        if unknown:
            raise PolicyError(
                f"{source}: unknown top-level keys {sorted(unknown)}; "
                "use [defaults], [[rules]] and [variants]."
            )
        defaults = data.get("defaults", {})
        if not isinstance(defaults, dict):
            raise PolicyError(f"{source}: [defaults] must be a table.")
        default_action = _action(defaults.get("action", "review"), source, "[defaults]")
        raw_rules = data.get("rules", [])
        if not isinstance(raw_rules, list):
            raise PolicyError(f"{source}: 'rules' must be an array of tables ([[rules]]).")
        rules = tuple(_rule(raw, i, source) for i, raw in enumerate(raw_rules))
        variants, variant_action = _variants(data.get("variants", {}), source)
        return cls(rules, default_action, source, variants, variant_action)

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "default_action": self.default_action,
            "rules": [{"name": r.name, "action": r.action} for r in self.rules],
            "variants": sorted(self.variants.enabled, key=VARIANT_ORDER.index),
            "variant_action": self.variant_action,
        }


def _action(value: object, source: str, where: str) -> str:
    if value not in ACTIONS:
        raise PolicyError(f"{source}: {where}: action must be one of {', '.join(ACTIONS)}; got {value!r}.")
    return str(value)


def _int(raw: dict[str, Any], key: str, where: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyError(f"{where}: {key} must be a whole number >= 0; got {value!r}.")
    return value


def _names(value: object, where: str, key: str, case: str = "lower") -> frozenset[str] | None:
    if value is None or value == "*":
        return None
    items: Iterable[object] = [value] if isinstance(value, str) else value  # type: ignore[assignment]
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise PolicyError(f"{where}: {key} must be a string or a list of strings; got {value!r}.")
    if "*" in items:
        return None
    fold = {"upper": str.upper, "lower": str.lower}.get(case, str)
    return frozenset(fold(v) for v in items)  # type: ignore[arg-type]


def _variant_names(value: object, where: str) -> VariantOptions:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
        raise PolicyError(f"{where} must be a list of variant or group names; got {value!r}.")
    try:
        return VariantOptions.from_names(names)
    except ValueError as exc:
        raise PolicyError(f"{where}: {exc}.") from None


def _rule_variants(value: object, where: str) -> frozenset[str] | None:
    """A rule's `variant` condition: exactly the names (groups expanded; "all" = every non-plain one)."""
    names = _names(value, where, "variant")
    if names is None:
        return None
    chosen = {variant for name in names for variant in GROUPS.get(name, (name,))}
    unknown = chosen - set(VARIANT_NAMES)
    if unknown:
        raise PolicyError(
            f"{where}: unknown variant(s) {sorted(unknown)}; choose from {', '.join(VARIANT_NAMES)} "
            f"or the groups {', '.join(GROUPS)}."
        )
    return frozenset(chosen)


def _variants(raw: object, source: str) -> tuple[VariantOptions, str | None]:
    where = f"{source}: [variants]"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be a table.")
    unknown = set(raw) - VARIANT_KEYS
    if unknown:
        raise PolicyError(f"{where}: unknown keys {sorted(unknown)}; known keys are {sorted(VARIANT_KEYS)}.")
    enabled = _variant_names(raw.get("enabled", ["all"]), f"{where} enabled")
    radii = raw.get("radii", {})
    if not isinstance(radii, dict):
        raise PolicyError(f"{where}: radii must be a table of variant = radius; got {radii!r}.")
    try:
        options = VariantOptions(enabled.enabled, {str(k).lower(): v for k, v in radii.items()})
    except ValueError as exc:
        raise PolicyError(f"{where}: radii: {exc}.") from None
    action = raw.get("action")
    return options, None if action is None else _action(action, source, "[variants]")


def _rule(raw: object, index: int, source: str) -> Rule:
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: rule #{index + 1} must be a table.")
    name = str(raw.get("name") or f"rule-{index + 1}")
    where = f"{source}: rule {name!r}"
    unknown = set(raw) - RULE_KEYS
    if unknown:
        raise PolicyError(f"{where}: unknown keys {sorted(unknown)}; known keys are {sorted(RULE_KEYS)}.")
    if "action" not in raw:
        raise PolicyError(f"{where}: every rule needs an action.")
    match = raw.get("match", "any")
    if match not in MATCH_TYPES:
        raise PolicyError(f"{where}: match must be one of {', '.join(MATCH_TYPES)}; got {match!r}.")
    scheme = raw.get("scheme")
    if scheme is not None and not isinstance(scheme, str):
        raise PolicyError(f"{where}: scheme must be a string; got {scheme!r}.")
    return Rule(
        name=name,
        action=_action(raw["action"], source, f"rule {name!r}"),
        match=match,
        min_distance=_int(raw, "min_distance", where),
        max_distance=_int(raw, "max_distance", where),
        min_verifications=_int(raw, "min_verifications", where),
        max_verifications=_int(raw, "max_verifications", where),
        classification=_names(raw.get("classification"), where, "classification", case="upper"),
        scheme=scheme.lower() if scheme else None,
        status=_names(raw.get("status"), where, "status"),
        lists=_names(raw.get("list"), where, "list", case="keep"),
        variants=_rule_variants(raw.get("variant"), where),
    )
