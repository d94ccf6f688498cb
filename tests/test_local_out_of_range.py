"""A corrupt row outside the requested range is reported like one inside it, and nothing is written.

The local source reads whole files but serves one range; rows no range can hold (a date after today,
a date the gate cannot parse) are served with every range, so the gate names their file, row and
column instead of the slice dropping them unseen.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from stockml.sources.local import LocalSource
from stockml.store.ingest import ingest_range, validate_batch
from stockml.store.lake import Lake
from stockml.store.validation import DataValidationError

JANUARY = (dt.date(2024, 1, 1), dt.date(2024, 1, 31))
HEADER = "ts_code,trade_date,open,high,low,close,pre_close,change,pct_chg,vol,amount"
VALUES = "9.9,10.1,9.7,10.0,9.9,0.1,1.0,900.0,890.0"


def _rows(code: str, dates: list[str]) -> str:
    return "\n".join([HEADER, *(f"{code},{d},{VALUES}" for d in dates)]) + "\n"


def _folder(tmp_path: Path, dates: list[str]) -> Path:
    """000001.SZ with the given dates, next to a clean 600000.SH."""
    root = tmp_path / "src"
    (root / "daily").mkdir(parents=True)
    (root / "daily" / "000001.SZ.csv").write_text(_rows("000001.SZ", dates))
    (root / "daily" / "600000.SH.csv").write_text(_rows("600000.SH", ["20240102", "20240103"]))
    return root


def _ingest(root: Path, lake: Lake) -> list[dict]:
    return ingest_range(lake, LocalSource(root), "local:test", *JANUARY, None, chunk_days=31)


BAD = [
    # (name, the bad date, the check and the value the report names)
    ("after today", "20991231", "not in the future", "2099-12-31"),
    ("half iso", "2023-0105", "parse date", "2023-0105"),
    ("text", "not-a-date", "parse date", "not-a-date"),
]


@pytest.mark.parametrize(("name", "bad", "check", "value"), BAD, ids=[b[0] for b in BAD])
def test_bad_date_outside_the_range_fails_the_ingest(
    tmp_path: Path, name: str, bad: str, check: str, value: str
) -> None:
    lake = Lake(tmp_path / "lake")
    root = _folder(tmp_path, ["20240102", bad, "20240103"])
    with pytest.raises(DataValidationError, match=r"000001\.SZ\.csv row 2 column trade_date") as info:
        _ingest(root, lake)
    failures = info.value.report.failures
    named = failures.assign(value=failures["value"].astype(str))[["row", "column", "check", "value"]]
    assert named.values.tolist() == [[2, "trade_date", check, value]]
    assert failures["source_file"].iloc[0] == str(root / "daily" / "000001.SZ.csv")
    assert info.value.report_path is not None and info.value.report_path.is_file()
    assert lake.tables() == [] and lake.manifest() == []


def test_clean_folder_ingests_only_the_range(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    entries = _ingest(_folder(tmp_path, ["20231229", "20240102", "2024-01-03", "20240201"]), lake)
    assert entries[0]["tables"]["bars"]["inserted"] == 4
    bars = lake.read("bars").sort_values(["ts_code", "trade_date"])
    assert bars["trade_date"].dt.strftime("%Y%m%d").tolist() == ["20240102", "20240103"] * 2


def test_today_bounds_what_is_served_with_every_range(tmp_path: Path) -> None:
    root = _folder(tmp_path, ["20240102", "20240120"])
    source = LocalSource(root, today=lambda: dt.date(2024, 1, 10))
    data = source.fetch(dt.date(2024, 1, 1), dt.date(2024, 1, 5))
    assert pd.Timestamp("2024-01-20") in pd.to_datetime(data.bars["trade_date"]).tolist()
    with pytest.raises(DataValidationError, match="row 2 column trade_date: not in the future"):
        validate_batch(data, dt.date(2024, 1, 10), tmp_path / "reports", "today")
    later = LocalSource(root, today=lambda: dt.date(2024, 1, 31)).fetch(
        dt.date(2024, 1, 1), dt.date(2024, 1, 5)
    )
    assert len(later.bars) == 3  # 2024-01-20 is a plausible day by then: outside the range, left out
