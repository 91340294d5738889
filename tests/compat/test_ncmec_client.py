"""python-threatexchange's own NCMEC client and exchange, unchanged, against a live hub on loopback."""

from __future__ import annotations

import time
import typing as t

import httpx
import pytest
from threatexchange.exchanges.clients.ncmec import hash_api as ncmec
from threatexchange.exchanges.impl.ncmec_api import NCMECCollabConfig, NCMECSignalExchangeAPI
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

from tests.compat.conftest import Listed
from tests.hub.conftest import World, item


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> t.Iterator[None]:
    """The NCMEC client writes local time with a 'Z' (see the README): run it in UTC, as users must."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def client_for(url: str, org: str, key: str, list_name: str | None = None) -> ncmec.NCMECHashAPI:
    """The stock client: built for an NCMEC environment, then pointed at the hub (as documented)."""
    api = ncmec.NCMECHashAPI(org, key, ncmec.NCMECEnvironment.test_NGO)
    api._base_url = url + (f"/compat/ncmec/lists/{list_name}" if list_name else "/compat/ncmec")
    return api


class HubNCMECExchange(NCMECSignalExchangeAPI):
    """threatexchange's NCMEC exchange reading a hub: only the client's address changes."""

    hub_url: t.ClassVar[str] = ""

    def get_client(self, environment: ncmec.NCMECEnvironment) -> ncmec.NCMECHashAPI:
        api = super().get_client(environment)
        api._base_url = self.hub_url + "/compat/ncmec"
        return api


def read_all(api: ncmec.NCMECHashAPI) -> tuple[dict[str, ncmec.NCMECEntryUpdate], int]:
    entries: dict[str, ncmec.NCMECEntryUpdate] = {}
    pages = 0
    for page in api.get_entries_iter(start_timestamp=0, end_timestamp=int(time.time()) + 60):
        ids = [u.id for u in page.updates]
        assert len(ids) == len(set(ids)), "an entry appears twice in one response"
        entries.update((u.id, u) for u in page.updates)
        pages += 1
    return entries, pages


def test_client_reads_every_entry_with_deletions_exactly_as_the_hub_lists_them(listed: Listed) -> None:
    api = client_for(listed.url, "plat", listed.key("plat"))
    entries, pages = read_all(api)
    assert pages == 3  # 2,303 readable entries, 1,000 a page

    expected = listed.expected()
    live = {i: e for i, e in entries.items() if not e.deleted}
    assert live.keys() == expected.keys()
    assert {i for i, e in entries.items() if e.deleted} == set(listed.withdrawn)
    assert not set(listed.restricted) & entries.keys()  # plat may not read that list
    ids = {"iwf": listed.org_id("iwf"), "ncmec": listed.org_id("ncmec")}
    for item_id, doc in expected.items():
        got = live[item_id]
        assert got.fingerprints == doc["fingerprints"]
        assert got.entry_type.value == doc["content_type"]
        assert got.classification == doc["classification"]["value"]
        assert got.member_id == ids[doc["contributor"]]
    assert all(not entries[i].fingerprints for i in listed.withdrawn)


def test_status_members_and_windows(listed: Listed) -> None:
    api = client_for(listed.url, "plat", listed.key("plat"))
    me = api.status()
    assert (me.esp_id, me.esp_name) == (listed.org_id("plat"), "plat")
    assert {(m.esp_id, m.esp_name) for m in api.members()} == {
        (listed.org_id(o), o) for o in ("iwf", "ncmec", "plat")
    }
    # A window that ends before anything was listed is empty; one around the listing is not.
    before = api.get_entries(start_timestamp=0, end_timestamp=int(listed.created) - 3600)
    assert before.updates == [] and before.next == ""
    page = api.get_entries(start_timestamp=int(listed.created) - 3600, end_timestamp=int(time.time()) + 5)
    assert len(page.updates) == 1000 and page.next.startswith("/v2/entries?")
    info = page.get_next_info()
    assert info is not None and info.size == 1000
    # West of UTC the client asks from before 1970; its 'to' may be far in the future.
    raw = httpx.get(
        f"{listed.url}/compat/ncmec/v2/entries",
        params={"from": "1969-12-31T19:00:00Z", "to": "2999-01-01T00:00:00Z"},
        auth=("plat", listed.key("plat")),
    )
    assert raw.status_code == 200 and raw.content.count(b"<image>") + raw.content.count(b"<video>") > 900
    assert b"from=1969-12-31T19%3A00%3A00Z&amp;to=2999-01-01T00%3A00%3A00Z&amp;start=" in raw.content


def test_one_list_mount_is_one_environment(listed: Listed) -> None:
    outsider = client_for(listed.url, "outsider", listed.key("outsider"), "restricted")
    entries, _ = read_all(outsider)
    assert set(entries) == set(listed.restricted)
    plat = client_for(listed.url, "plat", listed.key("plat"), "restricted")
    with pytest.raises(Exception, match="403"):
        plat.status()


def test_feedback_reaches_the_hub_and_shows_in_entries(fresh: World) -> None:
    a, b = fresh.submit_ok("iwf", [item(1), item(2)])
    plat = client_for(fresh.url, "plat", fresh.keys["plat"])
    reasons = plat.feedback_reasons(ncmec.FingerprintType.pdq)
    assert "not_csam" in reasons.values()
    guid = next(g for g, name in reasons.items() if name == "not_csam")
    iwf_esp = next(m.esp_id for m in plat.members() if m.esp_name == "iwf")

    plat.submit_feedback(iwf_esp, a, ncmec.FingerprintType.pdq, ncmec.FeedbackType.downvote, guid)
    # Older clients send their own member id; the entry id alone finds the item.
    plat.submit_upvote(plat.status().esp_id, b, ncmec.FingerprintType.md5)

    seen = fresh.client("iwf").get(f"/api/v1/items/{a}").json()
    assert seen["feedback"] == {"negative": 1}
    assert fresh.client("iwf").get(f"/api/v1/items/{b}").json()["feedback"] == {"affirmative": 1}

    entries, _ = read_all(plat)
    downvotes = entries[a].feedback["PDQ"]
    assert [(f.feedback_type, f.member.esp_name, f.reason) for f in downvotes] == [
        (ncmec.FeedbackType.downvote, "plat", "not_csam")
    ]
    assert [f.member.esp_name for f in entries[b].feedback["MD5"]] == ["plat"]
    # Another member does not see plat's opinions.
    other, _ = read_all(client_for(fresh.url, "plat2", fresh.keys["plat2"]))
    assert other[a].feedback == {}


def test_exchange_fetch_yields_the_hubs_signals(listed: Listed) -> None:
    listed.wait_until_older_than(6)  # the exchange reads up to five seconds ago
    HubNCMECExchange.hub_url = listed.url
    collab = NCMECCollabConfig(name="hub", environment=ncmec.NCMECEnvironment.test_NGO)
    exchange = HubNCMECExchange(collab, "plat", listed.key("plat"))
    fetched: dict[str, ncmec.NCMECEntryUpdate] = {}
    checkpoint = None
    for delta in exchange.fetch_iter([PdqSignal, VideoMD5Signal], None):
        exchange.naive_fetch_merge(fetched, delta.updates)
        checkpoint = delta.checkpoint
    assert checkpoint is not None and checkpoint.paging_info is None
    signals = exchange.naive_convert_to_signal_type([PdqSignal, VideoMD5Signal], collab, fetched)

    expected = listed.expected().values()
    pdqs = {d["fingerprints"]["pdq"] for d in expected if d["content_type"] == "image"}
    md5s = {d["fingerprints"]["md5"] for d in expected if d["content_type"] == "video"}
    assert set(signals[PdqSignal]) == pdqs
    assert set(signals[VideoMD5Signal]) == md5s
    a_pdq = next(iter(pdqs))
    assert set(signals[PdqSignal][a_pdq].member_entries) <= {listed.org_id("iwf"), listed.org_id("ncmec")}


def test_errors_answer_in_xml_with_the_right_status(listed: Listed) -> None:
    base = listed.url + "/compat/ncmec"
    key = listed.key("plat")
    cases = [
        ("GET", "/v2/status", None, None, 401),
        ("GET", "/v2/status", ("plat", "hh_000000000000_nope"), None, 401),
        ("GET", "/v2/status", ("iwf", key), None, 401),  # a key of another organisation
        ("GET", "/v2/status", ("iwf", listed.key("iwf")), None, 403),  # contributors are not members
        ("GET", "/v2/entries?from=yesterday", ("plat", key), None, 422),
        ("GET", "/v2/entries?start=-4", ("plat", key), None, 422),
        ("GET", "/v2/feedback/BOGUS/reasons", ("plat", key), None, 422),
        (
            "PUT",
            "/v2/entries/1/999999/PDQ/feedback",
            ("plat", key),
            b"<feedbackSubmission><affirmative/></feedbackSubmission>",
            404,
        ),
        ("PUT", "/v2/entries/1/x/PDQ/feedback", ("plat", key), b"", 404),
        (
            "PUT",
            f"/v2/entries/1/{listed.restricted[0]}/PDQ/feedback",
            ("plat", key),
            b"<feedbackSubmission><affirmative/></feedbackSubmission>",
            403,
        ),
    ]
    with httpx.Client(base_url=base) as http:
        for method, path, auth, body, status in cases:
            r = http.request(method, path, auth=auth, content=body)
            assert r.status_code == status, (path, r.text)
            assert r.headers["content-type"].startswith("application/xml")
            assert b"<message>" in r.content


HOSTILE = {
    "billion laughs": b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<feedbackSubmission><negative><reasonIds><guid>&c;</guid></reasonIds></negative></feedbackSubmission>""",
    "external entity": b"""<?xml version="1.0"?><!DOCTYPE f [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<feedbackSubmission><negative><reasonIds><guid>&x;</guid></reasonIds></negative></feedbackSubmission>""",
    "not xml": b'{"verdict": "negative"}',
    "truncated": b"<feedbackSubmission><negative>",
    "wrong root": b"<feedback><affirmative/></feedback>",
    "unknown reason": b"<feedbackSubmission><negative><reasonIds><guid>nope</guid></reasonIds>"
    b"</negative></feedbackSubmission>",
    "huge": b"<feedbackSubmission>" + b" " * 100_000 + b"</feedbackSubmission>",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_feedback_xml_is_refused_with_4xx(listed: Listed, name: str) -> None:
    entry = next(iter(listed.expected()))
    r = httpx.put(
        f"{listed.url}/compat/ncmec/v2/entries/1/{entry}/PDQ/feedback",
        content=HOSTILE[name],
        auth=("plat", listed.key("plat")),
    )
    assert 400 <= r.status_code < 500, r.text
    assert b"root:" not in r.content


def test_reads_are_audited(listed: Listed) -> None:
    from hashhub.hub.models import audit_log

    client_for(listed.url, "plat2", listed.key("plat2")).get_entries(start_timestamp=0)
    with listed.world.hub.engine.connect() as conn:
        actions = conn.execute(
            audit_log.select().where(audit_log.c.actor == "plat2", audit_log.c.action == "ncmec.entries.read")
        ).all()
    assert actions and actions[-1].target == "verified"
