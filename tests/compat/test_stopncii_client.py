"""python-threatexchange's own StopNCII client, unchanged but for its base URL, against a live hub."""

from __future__ import annotations

import httpx
import pytest
from threatexchange.exchanges.clients.stopncii import api as stopncii
from threatexchange.exchanges.collab_config import CollaborationConfigBase
from threatexchange.exchanges.impl.stop_ncii_api import StopNCIISignalExchangeAPI
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

from tests.compat.conftest import Listed
from tests.hub.conftest import World, item, pdq_of

Records = dict[tuple[stopncii.StopNCIISignalType, str], stopncii.StopNCIIHashRecord]


def client_for(url: str, key: str) -> stopncii.StopNCIIAPI:
    """The hub key goes in both of StopNCII's headers; feedback needs its own function key entry."""
    return stopncii.StopNCIIAPI(
        key,
        key,
        additional_function_keys={stopncii.StopNCIIEndpoint.SubmitFeedback: key},
        base_url_override=url + "/compat/stopncii/v1",
    )


def fetch_all(
    api: stopncii.StopNCIIAPI, start: int = stopncii.StopNCIIAPI.DEFAULT_START_TIME
) -> tuple[Records, list[stopncii.FetchHashesResponse]]:
    records: Records = {}
    pages = list(api.fetch_hashes_iter(start_timestamp=start))
    for page in pages:
        assert page.count == len(page.hashRecords)
        records.update(((r.signalType, r.hashValue), r) for r in page.hashRecords)
    return records, pages


def test_client_fetches_every_hash_of_the_list(listed: Listed) -> None:
    records, pages = fetch_all(client_for(listed.url, listed.key("plat")))
    assert len(pages) == 3  # 2,303 readable items, 800 a page
    assert len({p.nextSetTimestamp for p in pages}) == 1
    assert all(p.hasMoreRecords == bool(p.nextPageToken) for p in pages)

    expected = listed.expected()
    active = {k: r for k, r in records.items() if r.hashStatus == stopncii.StopNCIICaseStatus.Active}
    want = {
        (stopncii.StopNCIISignalType.ImagePDQ, d["fingerprints"]["pdq"])
        if d["content_type"] == "image"
        else (stopncii.StopNCIISignalType.VideoMD5, d["fingerprints"]["md5"])
        for d in expected.values()
    }
    assert set(active) == want
    for record in active.values():
        assert all(s == stopncii.StopNCIICaseStatus.Active for s in record.caseNumbers.values())
        assert set(record.caseNumbers) <= expected.keys()
    withdrawn = {k: r for k, r in records.items() if r.hashStatus != stopncii.StopNCIICaseStatus.Active}
    assert {c for r in withdrawn.values() for c in r.caseNumbers} == set(listed.withdrawn)


def test_exchange_fetch_gives_the_hubs_signals(listed: Listed) -> None:
    api = StopNCIISignalExchangeAPI(
        CollaborationConfigBase("hub", "stop_ncii", True), client_for(listed.url, listed.key("plat"))
    )
    fetched: dict = {}
    for delta in api.fetch_iter([PdqSignal, VideoMD5Signal], None):
        api.naive_fetch_merge(fetched, delta.updates)
    signals = api.naive_convert_to_signal_type([PdqSignal, VideoMD5Signal], api.collab, fetched)
    expected = listed.expected().values()
    # The stock exchange keeps withdrawn hashes too (it compares the hash, not the status, with
    # Withdrawn), so the live list is a subset of what it holds and withdrawn ones are the rest.
    assert {d["fingerprints"]["pdq"] for d in expected if d["content_type"] == "image"} <= set(
        signals[PdqSignal]
    )
    assert {d["fingerprints"]["md5"] for d in expected if d["content_type"] == "video"} <= set(
        signals[VideoMD5Signal]
    )


def test_a_hash_stays_active_while_any_case_is_live_and_withdrawals_arrive(fresh: World) -> None:
    shared = pdq_of("shared")
    a = fresh.submit_ok("iwf", [item("a", pdq=shared)])[0]
    b = fresh.submit_ok("ncmec", [item("b", pdq=shared)])[0]
    api = client_for(fresh.url, fresh.keys["plat"])
    records, pages = fetch_all(api)
    key = (stopncii.StopNCIISignalType.ImagePDQ, shared)
    assert records[key].caseNumbers == {
        a: stopncii.StopNCIICaseStatus.Active,
        b: stopncii.StopNCIICaseStatus.Active,
    }

    fresh.client("iwf").post(f"/api/v1/items/{a}/withdraw", json={"reason": "mistake"})
    later, _ = fetch_all(api, pages[-1].nextSetTimestamp)
    assert later[key].hashStatus == stopncii.StopNCIICaseStatus.Active  # ncmec's item still lists it
    assert later[key].caseNumbers[a] == stopncii.StopNCIICaseStatus.Withdrawn

    fresh.client("ncmec").post(f"/api/v1/items/{b}/withdraw", json={"reason": "mistake"})
    last, _ = fetch_all(api, pages[-1].nextSetTimestamp)
    assert last[key].hashStatus == stopncii.StopNCIICaseStatus.Withdrawn


def test_feedback_becomes_hub_feedback_and_comes_back_in_records(fresh: World) -> None:
    a, b = fresh.submit_ok("iwf", [item(1), item(2)])
    docs = {i: fresh.client("plat").get(f"/api/v1/items/{i}").json() for i in (a, b)}
    api = client_for(fresh.url, fresh.keys["plat"])
    image = stopncii.StopNCIISignalType.ImagePDQ
    api.submit_feedback(
        image, docs[a]["fingerprints"]["pdq"], stopncii.StopNCIICSPFeedbackValue.NotBlocked, {"not_csam"}
    )
    api.submit_feedback(image, docs[b]["fingerprints"]["pdq"], stopncii.StopNCIICSPFeedbackValue.Blocked)

    assert fresh.client("iwf").get(f"/api/v1/items/{a}").json()["feedback"] == {"negative": 1}
    assert fresh.client("iwf").get(f"/api/v1/items/{b}").json()["feedback"] == {"affirmative": 1}
    records, _ = fetch_all(api)
    fb = records[image, docs[a]["fingerprints"]["pdq"]].CSPFeedbacks
    assert [(f.source, f.feedbackValue, f.tags) for f in fb] == [
        ("plat", stopncii.StopNCIICSPFeedbackValue.NotBlocked, {"not_csam"})
    ]
    # The contributor sees every member's feedback on its items; another member sees none of it.
    theirs, _ = fetch_all(client_for(fresh.url, fresh.keys["plat2"]))
    assert theirs[image, docs[a]["fingerprints"]["pdq"]].CSPFeedbacks == []


def test_contributors_submit_hashes_with_the_stock_client(fresh: World) -> None:
    key = fresh.keys["iwf"]
    api = stopncii.StopNCIIAPI(
        key,
        key,
        additional_function_keys={stopncii.StopNCIIEndpoint.SubmitHashes: key},
        base_url_override=fresh.url + "/compat/stopncii/v1",
    )
    pdq = pdq_of("submitted")
    api.submit_hash(stopncii.StopNCIISignalType.ImagePDQ, pdq, tags={"industry:A2"})
    api.submit_hash(stopncii.StopNCIISignalType.ImagePDQ, pdq, tags={"industry:A2"})  # idempotent
    with pytest.raises(Exception, match="422"):
        api.submit_hash(stopncii.StopNCIISignalType.ImagePDQ, pdq_of("no grade"))

    records, _ = fetch_all(client_for(fresh.url, fresh.keys["plat"]))
    (record,) = records.values()
    assert (record.hashValue, record.hashStatus) == (pdq, stopncii.StopNCIICaseStatus.Active)
    (item_id,) = record.caseNumbers
    doc = fresh.client("plat").get(f"/api/v1/items/{item_id}").json()
    assert doc["classification"] == {"scheme": "industry", "value": "A2"} and doc["contributor"] == "iwf"


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("GET", "/FetchHashes", {}, None, 401),
        ("GET", "/FetchHashes", {"x-functions-key": "hh_000000000000_nope"}, None, 401),
        ("GET", "/FetchHashes?nextPageToken=forged", "plat", None, 422),
        ("GET", "/FetchHashes?pageSize=0", "plat", None, 422),
        (
            "POST",
            "/SubmitHashes",
            "plat",
            {"hashRecords": [{"signalType": "ImagePDQ", "hashValue": "0" * 64}]},
            403,
        ),
        (
            "POST",
            "/SubmitHashes",
            "ncmec",
            {"hashRecords": [{"signalType": "ImagePDQ", "hashValue": "0" * 64}]},
            422,
        ),
        ("GET", "/FetchHashes", "iwf", None, 403),
        ("POST", "/SubmitFeedback", "plat", {"count": 0, "hashFeedbacks": []}, 422),
        (
            "POST",
            "/SubmitFeedback",
            "plat",
            {"hashFeedbacks": [{"feedbackValue": "Blocked", "hashValue": "xyz"}]},
            422,
        ),
        (
            "POST",
            "/SubmitFeedback",
            "plat",
            {"hashFeedbacks": [{"feedbackValue": "Great", "hashValue": "0" * 64}]},
            422,
        ),
        (
            "POST",
            "/SubmitFeedback",
            "plat",
            {"hashFeedbacks": [{"feedbackValue": "Blocked", "hashValue": "1" * 64}]},
            404,
        ),
    ],
)
def test_bad_requests_get_clear_4xx(
    listed: Listed, method: str, path: str, headers: dict | str, body: dict | None, status: int
) -> None:
    if isinstance(headers, str):
        headers = {"Ocp-Apim-Subscription-Key": listed.key(headers)}
    r = httpx.request(method, listed.url + "/compat/stopncii/v1" + path, headers=headers, json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]
