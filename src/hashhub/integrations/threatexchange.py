"""A hashhub hub as a python-threatexchange `SignalExchangeAPI`, so `threatexchange` and HMA follow it.

It reads the hub's native feed (`GET /api/v1/feed?after=CURSOR`), which never reorders or skips a
change, so the checkpoint is simply the feed cursor: a fetch resumes exactly where the last one
stopped, and a withdrawal arrives as a delete of the item's record. Each record is one hub item,
keyed by its id; `naive_convert_to_signal_type` turns items into threatexchange signals (image PDQ
-> `pdq`, video MD5 -> `video_md5`, PhotoDNA -> `photodna` when that extension is loaded, and any
other signal whose name threatexchange shares). Opinions reported back become hub feedback on every
item that holds the signal exactly.

Install with `pip install 'hashhub[threatexchange]'`, then (README, section "interop"):

    threatexchange config extensions add hashhub.integrations.threatexchange
    threatexchange config collab edit hashhub my-hub --create --hub-url https://hub.example.org
    echo hh_... > ~/.tx_hashhub_key        # or TX_HASHHUB_KEY=hh_...
    threatexchange fetch
"""

# No `from __future__ import annotations` here: threatexchange's CLI reads the collab config's
# field types at run time to build its command-line options, so they must be real types.
import time
import typing as t
from dataclasses import dataclass, field

import httpx
from threatexchange.exchanges import auth, signal_exchange_api
from threatexchange.exchanges import fetch_state as state
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest
from threatexchange.signal_type.signal_base import SignalType

API_NAME = "hashhub"
PAGE = 1000
TIMEOUT = 60.0

#: (content type, hub signal) -> threatexchange signal name, where the names differ
SIGNAL_NAMES = {
    ("video", "md5"): "video_md5",
    ("video", "sha256"): "video_sha256",
    ("image", "pdna"): "photodna",
}
_NOT_FOR = {("image", "md5"), ("image", "sha256")}  # threatexchange has no image MD5/SHA-256 type


class HubError(Exception):
    """The hub refused a request or could not be reached; the message says which and why."""


@dataclass
class _HubRequired:
    hub_url: str = field(metadata={"help": "the hub's base URL, e.g. https://hub.example.org"})


@dataclass
class HashhubCollabConfig(CollaborationConfigWithDefaults, _HubRequired):
    """A hub to follow: its address and, optionally, which of your readable lists."""

    api: str = field(init=False, default=API_NAME)
    lists: set[str] = field(
        default_factory=set, metadata={"help": "only these lists (default: every list you may read)"}
    )


@dataclass
class HashhubCredentials(auth.CredentialHelper):
    ENV_VARIABLE: t.ClassVar[str] = "TX_HASHHUB_KEY"
    FILE_NAME: t.ClassVar[str] = "~/.tx_hashhub_key"

    api_key: str = field(metadata={"help": "a hub API key of a member organisation (hh_...)"})

    @classmethod
    def _from_str(cls, s: str) -> "HashhubCredentials":
        return cls(s.strip())

    def _are_valid(self) -> bool:
        return self.api_key.startswith("hh_")


@dataclass
class HashhubCheckpoint(state.FetchCheckpointBase):
    """The feed cursor read up to (it never goes back) and when that was."""

    cursor: int
    fetched_at: int

    def get_progress_timestamp(self) -> int:
        return self.fetched_at


@dataclass
class HashhubItem:
    """One hub item as fetched: enough to index its signals and to report on it."""

    id: str
    list: str
    contributor: str
    content_type: str
    scheme: str
    classification: str
    status: str
    fingerprints: dict[str, str]

    @classmethod
    def from_feed(cls, doc: t.Mapping[str, t.Any]) -> "HashhubItem":
        grade = doc.get("classification") or {}
        fps = {k: v for k, v in (doc.get("fingerprints") or {}).items() if isinstance(v, str)}
        return cls(
            id=str(doc["id"]),
            list=str(doc.get("list", "")),
            contributor=str(doc.get("contributor", "")),
            content_type=str(doc.get("content_type", "image")),
            scheme=str(grade.get("scheme", "")),
            classification=str(grade.get("value", "")),
            status=str(doc.get("status", "active")),
            fingerprints=fps,
        )

    @property
    def tag(self) -> str:
        return f"{self.scheme}:{self.classification}"


@dataclass
class HashhubSignalMetadata(state.FetchedSignalMetadata):
    """Who lists a signal and how they classify it: contributor -> "scheme:value" tags."""

    contributors: dict[str, set[str]]
    disputed: bool = False

    def get_as_opinions(self) -> t.Sequence[state.SignalOpinion]:
        category = (
            state.SignalOpinionCategory.INVESTIGATION_SEED
            if self.disputed
            else state.SignalOpinionCategory.POSITIVE_CLASS
        )
        return [
            state.SignalOpinion(False, category, set(tags)) for _, tags in sorted(self.contributors.items())
        ]


def signal_name(content_type: str, hub_signal: str) -> str | None:
    """The threatexchange signal name for a hub fingerprint on this kind of media, if there is one."""
    if (content_type, hub_signal) in _NOT_FOR:
        return None
    return SIGNAL_NAMES.get((content_type, hub_signal), hub_signal)


def hub_signal(tx_name: str) -> str:
    return next((h for (_, h), n in SIGNAL_NAMES.items() if n == tx_name), tx_name)


class HashhubSignalExchangeAPI(
    auth.SignalExchangeWithAuth[HashhubCollabConfig, HashhubCredentials],
    signal_exchange_api.SignalExchangeAPI[
        HashhubCollabConfig, HashhubCheckpoint, HashhubSignalMetadata, str, HashhubItem
    ],
):
    """Follow a hashhub hub's feed as a member."""

    def __init__(self, collab: HashhubCollabConfig, api_key: str) -> None:
        super().__init__()
        self.collab = collab
        self._api_key = api_key

    def _session(self) -> httpx.Client:
        """A client for one fetch or report (closed when it ends, even if a fetch is abandoned)."""
        return httpx.Client(
            base_url=self.collab.hub_url.rstrip("/"),
            headers={"Authorization": f"Bearer {self._api_key}"},
            timeout=TIMEOUT,
        )

    @classmethod
    def get_name(cls) -> str:
        return API_NAME

    @classmethod
    def for_collab(
        cls, collab: HashhubCollabConfig, credentials: HashhubCredentials | None = None
    ) -> "HashhubSignalExchangeAPI":
        credentials = credentials or HashhubCredentials.get(cls)
        return cls(collab, credentials.api_key)

    @staticmethod
    def get_config_cls() -> type[HashhubCollabConfig]:
        return HashhubCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> type[HashhubCheckpoint]:
        return HashhubCheckpoint

    @staticmethod
    def get_record_cls() -> type[HashhubSignalMetadata]:
        return HashhubSignalMetadata

    @staticmethod
    def get_credential_cls() -> type[HashhubCredentials]:
        return HashhubCredentials

    @staticmethod
    def _call(http: httpx.Client, method: str, path: str, **kwargs: t.Any) -> t.Any:
        try:
            r = http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise HubError(f"Could not reach the hub at {http.base_url}: {exc}.") from exc
        if r.status_code >= 400:
            try:
                reason = r.json().get("error", r.text)
            except ValueError:
                reason = r.text
            raise HubError(f"The hub answered {method} {path} with {r.status_code}: {reason}")
        return r.json()

    def fetch_iter(
        self,
        _supported_signal_types: t.Sequence[type[SignalType]],
        checkpoint: HashhubCheckpoint | None,
    ) -> t.Iterator[state.FetchDelta[str, HashhubItem, HashhubCheckpoint]]:
        cursor = checkpoint.cursor if checkpoint else 0
        lists = sorted(self.collab.lists)
        with self._session() as http:
            yield from self._follow(http, cursor, lists)

    def _follow(
        self, http: httpx.Client, cursor: int, lists: list[str]
    ) -> t.Iterator[state.FetchDelta[str, HashhubItem, HashhubCheckpoint]]:
        while True:
            params = {"after": cursor, "limit": PAGE, "list": lists}
            page = self._call(http, "GET", "/api/v1/feed", params=params)
            updates: dict[str, HashhubItem | None] = {}
            for change in page["changes"]:
                if change["op"] == "delete":
                    updates[str(change["id"])] = None
                else:
                    record = HashhubItem.from_feed(change["item"])
                    updates[record.id] = record
            cursor = max(cursor, int(page["next"]))
            yield state.FetchDelta(updates, HashhubCheckpoint(cursor, int(time.time())))
            if not page["has_more"]:
                return

    @classmethod
    def naive_convert_to_signal_type(
        cls,
        signal_types: t.Sequence[type[SignalType]],
        collab: HashhubCollabConfig,
        fetched: t.Mapping[str, HashhubItem],
    ) -> dict[type[SignalType], dict[str, HashhubSignalMetadata]]:
        by_name = {st.get_name(): st for st in signal_types}
        out: dict[type[SignalType], dict[str, HashhubSignalMetadata]] = {}
        for record in fetched.values():
            if record.status == "withdrawn":
                continue
            for name, value in record.fingerprints.items():
                st = by_name.get(signal_name(record.content_type, name) or "")
                if st is None:
                    continue
                try:
                    value = st.validate_signal_str(value)
                except Exception:
                    continue
                meta = out.setdefault(st, {}).setdefault(value, HashhubSignalMetadata({}))
                meta.contributors.setdefault(record.contributor, set()).add(record.tag)
                meta.disputed = meta.disputed or record.status == "disputed"
        return out

    def report_opinion(self, s_type: type[SignalType], signal: str, opinion: state.SignalOpinion) -> None:
        """A positive or negative opinion becomes hub feedback on every item holding `signal` exactly."""
        verdicts = {
            state.SignalOpinionCategory.POSITIVE_CLASS: ("affirmative", "confirmed"),
            state.SignalOpinionCategory.NEGATIVE_CLASS: ("negative", "not_csam"),
        }
        if opinion.category not in verdicts:
            raise NotImplementedError("The hub takes only positive or negative opinions.")
        verdict, reason = verdicts[opinion.category]
        name = hub_signal(s_type.get_name())
        body = {"fingerprints": [{name: signal}], "radius": {name: 0}}
        note = ", ".join(sorted(opinion.tags))[:2000]
        with self._session() as http:
            found = self._call(http, "POST", "/api/v1/match", json=body)["results"][0]["matches"]
            if not found:
                raise HubError(f"No item you may read on the hub has the {name} signal {signal}.")
            for match in found:
                feedback = {"verdict": verdict, "reason": reason, "note": note}
                self._call(http, "POST", f"/api/v1/items/{match['item']}/feedback", json=feedback)


TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(HashhubSignalExchangeAPI,))
