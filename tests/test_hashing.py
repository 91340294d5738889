"""hashhub.hashing: the one entry point that the hub, the agent and the CLI use to fingerprint a file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashhub.hashing import DEFAULT_SIGNALS, FileHashes, computable, hash_bytes, hash_path, plan
from hashhub.signals import SignalError


def _reference_row(corpus: Path) -> dict[str, str]:
    with (corpus / "kodak.reference.csv").open(newline="") as handle:
        return next(csv.DictReader(handle))


def test_a_photo_gets_every_default_signal_as_the_reference_has_them(corpus: Path) -> None:
    row = _reference_row(corpus)
    result = hash_path(corpus / "kodak" / row["file"])
    assert result.ok
    assert list(result.hashes) == list(DEFAULT_SIGNALS)
    for name in ("md5", "sha1", "sha256", "pdq"):
        assert result.hashes[name] == row[name]
    assert result.quality == {"pdq": int(row["pdq_quality"])}


def test_bytes_and_paths_give_the_same_result(corpus: Path) -> None:
    path = corpus / "kodak" / _reference_row(corpus)["file"]
    assert hash_bytes(path.read_bytes()) == hash_path(path)
    assert hash_path(str(path)) == hash_path(path)


def test_only_the_signals_asked_for(corpus: Path) -> None:
    path = corpus / "kodak" / _reference_row(corpus)["file"]
    assert list(hash_path(path, ["sha256"]).hashes) == ["sha256"]
    only_pdq = hash_path(path, ["PDQ"])  # names are case-insensitive, as everywhere
    assert list(only_pdq.hashes) == ["pdq"]
    assert hash_path(path, "md5,pdq").hashes.keys() == {"md5", "pdq"}
    assert list(hash_path(path, ["md5", "md5"]).hashes) == ["md5"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["pdna"], "pdna: cannot be computed from a file"),
        (["tmk_pdqf"], "tmk_pdqf: cannot be computed from a file"),
        (["not a name"], "signal names are 1-64 characters"),
        ([], "no signals given"),
    ],
)
def test_signals_that_cannot_be_computed_are_refused(names: list[str], message: str) -> None:
    with pytest.raises(SignalError, match=message):
        hash_bytes(b"anything", names)


def test_the_refusal_lists_what_can_be_computed() -> None:
    with pytest.raises(SignalError) as caught:
        plan(["pdna"])
    for name in computable():
        assert name in str(caught.value)
    assert {"md5", "sha1", "sha256", "pdq"} <= set(computable())


def test_a_flat_image_has_pdq_quality_but_no_pdq() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (120, 120, 120)).save(buffer, format="PNG")
    result = hash_bytes(buffer.getvalue())
    assert result.ok
    assert "pdq" not in result.hashes
    assert result.quality["pdq"] < 50
    assert result.to_row()["pdq"] is None


def test_a_non_image_keeps_its_crypto_hashes_and_says_why_pdq_is_missing() -> None:
    result = hash_bytes(b"%PDF-1.4 not an image at all")
    assert set(result.hashes) == {"md5", "sha1", "sha256"}
    assert not result.ok
    assert "not an image" in result.error


def test_crypto_only_never_decodes() -> None:
    assert hash_bytes(b"plain text", ["md5", "sha1"]).ok


def test_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    result = hash_path(tmp_path / "empty.jpg")
    assert result.hashes["md5"] == "d41d8cd98f00b204e9800998ecf8427e"
    assert result.error == "file is empty"


def test_an_unreadable_path_gives_the_reason_instead_of_raising(tmp_path: Path) -> None:
    result = hash_path(tmp_path / "absent.jpg")
    assert result == FileHashes(error="cannot read file: No such file or directory")
    assert hash_path(tmp_path).error.startswith("cannot read file")


def test_rows_have_one_column_per_signal_and_quality_for_image_signals(corpus: Path) -> None:
    assert plan().columns() == ["md5", "sha1", "sha256", "pdq", "pdq_quality"]
    assert plan(["sha1", "pdq"]).columns() == ["sha1", "pdq", "pdq_quality"]
    row = hash_path(corpus / "kodak" / _reference_row(corpus)["file"]).to_row()
    assert list(row) == ["md5", "sha1", "sha256", "pdq", "pdq_quality"]


def test_rotated_and_mirrored_copies_hash_far_apart_but_dihedral_variants_find_them(corpus: Path) -> None:
    """What an index built on `dihedral_hashes` relies on: one DCT gives all 8 orientations."""
    from hashhub.signals import PdqSignal
    from hashhub.signals.pdq_hasher import dihedral_hashes, luma_from_rgb

    path = corpus / "kodak" / _reference_row(corpus)["file"]
    with Image.open(path) as image:
        upright = image.convert("RGB")
        turned = upright.transpose(Image.Transpose.ROTATE_90)
    buffer = io.BytesIO()
    turned.save(buffer, format="PNG")
    turned_hash = hash_bytes(buffer.getvalue(), ["pdq"]).hashes["pdq"]
    variants = dihedral_hashes(luma_from_rgb(np.asarray(upright)))
    assert PdqSignal.distance(variants["original"].hash, turned_hash) > 64
    assert min(PdqSignal.distance(v.hash, turned_hash) for v in variants.values()) <= 31
