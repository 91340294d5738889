"""Shared fixtures: where the benign test corpus lives."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """../shared/corpus (benign photos with reference hashes); skips when the folder is absent."""
    if not (CORPUS / "photos.reference.csv").exists():
        pytest.skip(f"benign test corpus not found at {CORPUS}")
    return CORPUS
