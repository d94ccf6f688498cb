"""Where the real A-share sample lies (``../shared/data/ashare_sample`` beside the clone), and what a test
that needs it does without it: skip with the reason in a clone elsewhere, fail where
``STOCKML_REQUIRE_SAMPLE`` is set (CI, where the sample is present and a skip would hide a problem)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SAMPLE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ashare_sample"
REQUIRE = "STOCKML_REQUIRE_SAMPLE"


def require_sample() -> Path:
    """The sample folder; else skip (or, with ``STOCKML_REQUIRE_SAMPLE`` set, fail) the calling test."""
    if SAMPLE_DIR.is_dir():
        return SAMPLE_DIR
    reason = f"needs the real A-share sample at {SAMPLE_DIR} (../shared/data/ashare_sample beside the clone)"
    if os.environ.get(REQUIRE):
        pytest.fail(f"{reason}; {REQUIRE} is set, so its absence is an error")
    pytest.skip(reason)
