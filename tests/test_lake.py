"""The parquet lake: idempotent upserts, corrections replace, atomic writes, manifest."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pyarrow.dataset as pads
import pytest

from stockml.store.lake import Lake, frame_hash


def _bars(closes: list[float], start: str = "2024-01-30", code: str = "000001.SZ") -> pd.DataFrame:
    days = pd.bdate_range(start, periods=len(closes))
    return pd.DataFrame(
        {
            "ts_code": code,
            "trade_date": days,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "vol": 1.0,
            "amount": 1.0,
        }
    )


def test_upsert_is_idempotent_and_partitions_by_month(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    first = lake.upsert("bars", _bars([1.0, 2.0, 3.0, 4.0]))
    assert (first.inserted, first.updated, first.files_written) == (4, 0, 2)
    assert [p.name for p in lake.files("bars")] == ["2024-01.parquet", "2024-02.parquet"]
    mtimes = [p.stat().st_mtime_ns for p in lake.files("bars")]
    again = lake.upsert("bars", _bars([1.0, 2.0, 3.0, 4.0]))
    assert (again.inserted, again.updated, again.files_written) == (0, 0, 0)
    assert [p.stat().st_mtime_ns for p in lake.files("bars")] == mtimes
    assert pads.dataset(str(tmp_path / "bars")).count_rows() == 4
    empty = lake.upsert("bars", _bars([1.0]).iloc[:0])  # nothing to write: no partition, no error
    assert (empty.inserted, empty.updated, empty.files_written) == (0, 0, 0)


def test_corrected_bar_replaces_old_one(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.upsert("bars", _bars([1.0, 2.0, 3.0]))
    result = lake.upsert("bars", _bars([1.0, 2.5, 3.0]))
    assert (result.inserted, result.updated) == (0, 1)
    assert lake.read("bars")["close"].tolist() == [1.0, 2.5, 3.0]


def test_read_filters_dates_and_symbols(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.upsert("bars", pd.concat([_bars([1.0, 2.0, 3.0]), _bars([5.0, 6.0, 7.0], code="600000.SH")]))
    got = lake.read("bars", start=dt.date(2024, 1, 31), end=dt.date(2024, 2, 1), symbols=["600000.SH"])
    assert got["close"].tolist() == [6.0, 7.0]
    with pytest.raises(FileNotFoundError, match="adj_factor"):
        lake.read("adj_factor")


def test_killed_write_leaves_previous_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(tmp_path)
    lake.upsert("bars", _bars([1.0, 2.0]))
    before = {p.name: p.read_bytes() for p in lake.files("bars")}

    def die(src: str, dst: str) -> None:
        raise KeyboardInterrupt("killed between write and rename")

    monkeypatch.setattr(os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        lake.upsert("bars", _bars([9.0, 9.0]))
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in lake.files("bars")} == before
    assert lake.read("bars")["close"].tolist() == [1.0, 2.0]  # hidden temp files are not read


def test_manifest_appends_and_hash_ignores_row_order(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.append_manifest({"kind": "chunk", "n": 1})
    lake.append_manifest({"kind": "job_done", "名": "中文"})
    assert lake.manifest() == [{"kind": "chunk", "n": 1}, {"kind": "job_done", "名": "中文"}]
    bars = _bars([1.0, 2.0, 3.0])
    assert frame_hash("bars", bars) == frame_hash("bars", bars.iloc[::-1])
    assert frame_hash("bars", bars) != frame_hash("bars", _bars([1.0, 2.0, 3.5]))


def test_the_previous_portfolio_is_the_last_book_before_the_day(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    for day, code in (
        (dt.date(2024, 3, 6), "A.SH"),
        (dt.date(2024, 3, 7), "B.SH"),
        (dt.date(2024, 3, 11), "C.SZ"),
    ):
        path = lake.write_portfolio(pd.DataFrame({"ts_code": [code], "weight": [1.0]}), day)
        assert path == tmp_path / "portfolios" / "daily" / f"{day}.parquet"
    assert lake.previous_portfolio(dt.date(2024, 3, 6)) is None
    assert lake.previous_portfolio(dt.date(2024, 3, 8))["ts_code"].tolist() == ["B.SH"]  # type: ignore[index]
    # a rerun of 2024-03-07 starts from the book before it, not from its own first run's
    assert lake.previous_portfolio(dt.date(2024, 3, 7))["ts_code"].tolist() == ["A.SH"]  # type: ignore[index]


def test_a_rerun_skips_the_merge_even_after_merges_and_with_missing_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition that already holds exactly the incoming rows is neither merged nor written: true for a
    file written new, for one rewritten by a merge (a row added, a row corrected) and with NaNs in it."""
    import stockml.store.lake as lake_module

    lake = Lake(tmp_path)
    bars = _bars([1.0, 2.0, 3.0, 4.0]).assign(amount=[1.0, float("nan"), 2.0, float("nan")])
    lake.upsert("bars", bars.iloc[:3])
    merged = lake.upsert("bars", bars.assign(close=[1.0, 2.5, 3.0, 4.0]))  # February: one added, one fixed
    assert (merged.inserted, merged.updated) == (1, 1)
    final = bars.assign(close=[1.0, 2.5, 3.0, 4.0])
    calls: list[int] = []
    real = lake_module._merge
    monkeypatch.setattr(lake_module, "_merge", lambda *a: calls.append(1) or real(*a))
    again = lake.upsert("bars", final)
    assert (again.inserted, again.updated, again.files_written) == (0, 0, 0) and calls == []
    changed = lake.upsert("bars", final.assign(amount=[1.0, 9.0, 2.0, float("nan")]))  # a NaN filled in
    assert (changed.inserted, changed.updated, changed.files_written) == (0, 1, 1) and calls == [1]
    assert lake.read("bars")["amount"].tolist()[:3] == [1.0, 9.0, 2.0]
