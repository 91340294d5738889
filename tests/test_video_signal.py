"""The vpdq signal type: every accepted form gives Meta's text lines, bad frames are named, matching
shares behave as vPDQ defines them."""

from __future__ import annotations

import json

import pytest

from hashhub import signals
from hashhub.signals import SignalError
from hashhub.signals.video_base import VideoHasher
from hashhub.signals.vpdq import MAX_FRAMES, VpdqSignal

A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
B = "6526f4b36748a99e9ce60e4b212171b159dead4eac31563ceb16a51356eb198d"
C = "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c"
CANONICAL = f"0,100,{A},0.000\n30,98,{B},1.000"


def test_vpdq_is_a_registered_video_type() -> None:
    vpdq = signals.get("VPDQ")
    assert vpdq is VpdqSignal
    assert issubclass(vpdq, VideoHasher)
    assert vpdq.media == frozenset({"video"})
    assert vpdq.index_kind == "video"


@pytest.mark.parametrize(
    "value",
    [
        CANONICAL,
        f"0,100,{A.upper()},0\r\n30,98,{B},1.0\n\n",  # Meta's file as written on another system
        [
            {"frame": 0, "quality": 100, "pdq": A, "timestamp": 0.0},
            {"frame": 30, "quality": 98, "pdq": B, "timestamp": 1},
        ],
        json.dumps([{"frame": 0, "quality": 100, "pdq": A, "timestamp": 0}, f"30,98,{B},1.000"]),
        CANONICAL.encode(),
    ],
    ids=["canonical", "meta-file", "json-list", "json-text", "bytes"],
)
def test_every_accepted_form_gives_the_canonical_lines(value: object) -> None:
    assert VpdqSignal.parse(value) == CANONICAL


def test_threatexchange_compact_strings_number_frames_by_position() -> None:
    compact = json.dumps([f"{A},100,0.000", f"{B},98,1.000"])
    assert VpdqSignal.parse(compact) == f"0,100,{A},0.000\n1,98,{B},1.000"


def test_present_is_the_json_shape_and_parses_back() -> None:
    shown = VpdqSignal.present(CANONICAL)
    assert shown == [
        {"frame": 0, "quality": 100, "pdq": A, "timestamp": 0.0},
        {"frame": 30, "quality": 98, "pdq": B, "timestamp": 1.0},
    ]
    assert VpdqSignal.parse(json.loads(json.dumps(shown))) == CANONICAL


def test_timestamps_keep_three_decimals() -> None:
    assert VpdqSignal.parse(f"7,90,{A},1.23456") == f"7,90,{A},1.235"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "value is empty"),
        ("[]", "holds no frames"),
        ("[1, 2", "not valid JSON"),
        ('{"frame": 0}', "expected 'frame,quality,pdqhex,timestamp'"),
        (json.dumps({"frames": []}), "expected 'frame,quality,pdqhex,timestamp'"),
        (f"0,100,{A}", "frame 1: PDQ hash"),
        (f"0,100,{A},0.0\n1,100,{A[:-1]},1.0", "frame 2: PDQ hash: expected 64 hexadecimal characters"),
        (f"0,101,{A},0.0", "frame 1: quality must be an integer from 0 to 100, got 101"),
        (f"-1,100,{A},0.0", "frame 1: frame number must be an integer"),
        (f"0,100,{A},-2", "frame 1: timestamp must be a number of seconds >= 0"),
        (f"0,100,{A},nan", "frame 1: timestamp must be a number of seconds >= 0"),
        ([{"frame": 0, "pdq": A}], "frame 1 lacks quality, timestamp"),
        ([{"frame": True, "quality": 50, "pdq": A, "timestamp": 0}], "frame number must be an integer"),
        ([42], "frame 1: expected an object or a text line, got int"),
        (3.5, "expected a string, got float"),
    ],
)
def test_bad_values_say_which_frame_and_what(value: object, fragment: str) -> None:
    with pytest.raises(SignalError) as caught:
        VpdqSignal.parse(value)
    assert str(caught.value).startswith("vpdq: ")
    assert fragment in str(caught.value)


def test_too_many_frames_are_refused() -> None:
    line = f"0,100,{A},0.000"
    with pytest.raises(SignalError, match=f"limit is {MAX_FRAMES:,}"):
        VpdqSignal.parse([line] * (MAX_FRAMES + 1))


def lines(*frames: tuple[str, int]) -> str:
    return "\n".join(f"{i},{quality},{pdq},{i}.000" for i, (pdq, quality) in enumerate(frames))


def test_distance_is_the_share_of_query_frames_without_a_match() -> None:
    near_a = f"{int(A, 16) ^ 0x7FFF_FFFF:064x}"  # 31 bits from A: still the same frame
    listed = lines((A, 100), (B, 100), (C, 100))
    short_query = lines((near_a, 90), (B, 100))
    assert VpdqSignal.distance(short_query, listed) == 0.0
    assert VpdqSignal.matches(short_query, listed)
    # The other way round only a third of the (now query) frames are found: no match.
    assert VpdqSignal.distance(listed, short_query) == pytest.approx(1 / 3)
    assert not VpdqSignal.matches(listed, short_query)


def test_low_quality_and_repeated_frames_do_not_count() -> None:
    listed = lines((A, 100), (B, 100))
    # C is below quality 50, so the query is A and B only; repeating A changes nothing.
    query = lines((A, 100), (A, 100), (B, 80), (C, 49))
    assert VpdqSignal.distance(query, listed) == 0.0
