"""Scanning: bytes or fingerprints in, hashes -> matches -> policy -> recorded decision out.

`Scanner` is what the API and the CLI share. Hashing is `hashhub.detect` (in memory for uploads:
media is never written to disk): the plain hashes, then the image's query variants the policy
enables; matching is the in-memory `Matcher`; the verdict comes from the `Policy`, and
`decisions.record` keeps matched files' decisions, review entries, report drafts and the hits owed
to hubs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hashhub.agent import decisions
from hashhub.agent.matcher import Match, Matcher
from hashhub.agent.policy import Policy, Verdict
from hashhub.agent.store import Store
from hashhub.detect import IMAGE_SIGNALS, VIDEO_SIGNALS, Scanned, VideoVariant, hash_media, signals_for
from hashhub.hashing import FileHashes
from hashhub.variants import Variant

__all__ = ["IMAGE_SIGNALS", "VIDEO_SIGNALS", "ScanResult", "Scanner", "signals_for"]


@dataclass
class ScanResult:
    """What the agent decided for one file (or one set of fingerprints computed elsewhere)."""

    file: str | None
    hashes: dict[str, str]
    quality: dict[str, int]
    matches: list[Match]
    verdict: Verdict
    error: str | None = None
    decision_id: int | None = None
    review_id: int | None = None
    report_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def matched(self) -> bool:
        return bool(self.matches)

    @property
    def action(self) -> str:
        return self.verdict.action

    def as_dict(self) -> dict[str, Any]:
        per_match = dict(zip((m.pk for m in self.matches), self.verdict.per_match, strict=False))
        matches = []
        for m in self.matches:
            entry = m.as_dict()
            action, rule = per_match.get(m.pk, (self.action, self.verdict.rule))
            entry["action"], entry["rule"] = action, rule
            matches.append(entry)
        out: dict[str, Any] = {
            "file": self.file,
            "matched": self.matched,
            "action": self.action,
            "rule": self.verdict.rule,
            "matches": matches,
            "hashes": self.hashes,
        }
        if self.quality:
            out["quality"] = self.quality
        if self.error:
            out["error"] = self.error
        for key, value in (
            ("decision", self.decision_id),
            ("review", self.review_id),
            ("report", self.report_id),
        ):
            if value is not None:
                out[key] = value
        return out


class Scanner:
    """The agent's scanning service over one store, one matcher and one policy."""

    def __init__(self, store: Store, policy: Policy | None = None, matcher: Matcher | None = None) -> None:
        self.store = store
        self.policy = policy or Policy.default()
        self.matcher = matcher or Matcher()

    def refresh(self) -> int:
        """Pick up what sync wrote to the store (this process's or a replica's)."""
        return self.matcher.refresh(self.store)

    def evaluate(self, file: str | None, hashed: FileHashes) -> ScanResult:
        """Match and decide one file's hashes, without recording anything."""
        return self.evaluate_many([file], [hashed])[0]

    def evaluate_many(
        self,
        files: Sequence[str | None],
        hashed: Sequence[FileHashes],
        variants: Sequence[Sequence[Variant]] | None = None,
        video_variants: Sequence[Sequence[VideoVariant]] | None = None,
    ) -> list[ScanResult]:
        """Match and decide many files; `variants[i]` / `video_variants[i]`: file i's query
        variants (`hashhub.detect`)."""
        found = self.matcher.match_many(
            [h.hashes for h in hashed],
            [h.quality for h in hashed],
            list(variants) if variants is not None else None,
            self.policy.variants,
        )
        for row, extra in enumerate(video_variants or []):
            found[row] += self._video_variant_matches(found[row], extra)
        return [
            ScanResult(
                file=file,
                hashes=dict(h.hashes),
                quality=dict(h.quality),
                matches=matches,
                verdict=self.policy.decide(matches),
                error=h.error,
            )
            for file, h, matches in zip(files, hashed, found, strict=True)
        ]

    def evaluate_scanned(self, files: Sequence[str | None], scanned: Sequence[Scanned]) -> list[ScanResult]:
        """`evaluate_many` for what `hashhub.detect` computed (hashes and query variants)."""
        return self.evaluate_many(
            files,
            [s.hashed for s in scanned],
            [s.variants for s in scanned],
            [s.video_variants for s in scanned],
        )

    def _video_variant_matches(self, found: list[Match], extra: Sequence[VideoVariant]) -> list[Match]:
        """Items only a video's variant (its trimmed frames) matched, reported under that variant."""
        seen = {m.pk for m in found}
        added: list[Match] = []
        for variant in extra:
            for match in self.matcher.match(variant.hashes):
                if match.pk not in seen:
                    seen.add(match.pk)
                    added.append(replace(match, variant=variant.name))
        return added

    def scan_bytes(self, data: bytes, file: str | None = None, *, source: str = "api") -> ScanResult:
        """Hash `data` in memory (with the policy's query variants), match, decide and record."""
        (result,) = self.evaluate_scanned([file], [hash_media(data, self.policy.variants)])
        decisions.record(self.store, [result], source)
        return result

    def scan_fingerprints(
        self, hashes: Mapping[str, str], file: str | None = None, *, source: str = "api"
    ) -> ScanResult:
        """Match fingerprints computed elsewhere (already canonical), decide and record."""
        result = self.evaluate(file, FileHashes(hashes=dict(hashes), quality={}, error=None))
        decisions.record(self.store, [result], source)
        return result
