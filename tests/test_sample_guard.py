"""A test that needs the real sample skips with the reason in a clone without ``../shared`` and fails where
``STOCKML_REQUIRE_SAMPLE`` is set (CI)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sample


def test_a_missing_sample_skips_and_fails_where_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample, "SAMPLE_DIR", tmp_path / "absent")
    monkeypatch.delenv(sample.REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs the real A-share sample at .*absent"):
        sample.require_sample()
    monkeypatch.setenv(sample.REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="STOCKML_REQUIRE_SAMPLE is set"):
        sample.require_sample()
    monkeypatch.setattr(sample, "SAMPLE_DIR", tmp_path)
    assert sample.require_sample() == tmp_path
