"""The backfill flow (Prefect, ephemeral): idempotent, resumable after a kill, summary printed."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from stockml.store.lake import Lake

START, END = dt.date(2023, 1, 2), dt.date(2023, 12, 29)
ROOT = Path(__file__).resolve().parents[1]


def _tables(lake: Lake) -> dict[str, pd.DataFrame]:
    return {
        t: lake.read(t).sort_values(list(lake.read(t).columns[:2])).reset_index(drop=True)
        for t in lake.tables()
    }


@pytest.mark.slow
def test_backfill_twice_adds_nothing(tmp_path: Path, prefect_harness: None) -> None:
    from flows.backfill import backfill, format_summary

    first = backfill(start=START, end=END, source="demo", data_dir=tmp_path, chunk_days=120)
    assert first["chunks_run"] == 4 and first["rows_inserted"] > 0
    lake = Lake(tmp_path)
    assert first["lake"]["symbols"] == 8 and first["lake"]["bars"] == len(lake.read("bars"))
    assert set(first["tables_used"]) == {
        "bars",
        "adj_factor",
        "index_daily",
        "stock_basic",
        "macro",
        "sentiment",
        "trade_cal",
    }
    hashes = {t: lake.table_hash(t) for t in lake.tables()}
    second = backfill(start=START, end=END, source="demo", data_dir=tmp_path, chunk_days=120)
    assert (second["rows_inserted"], second["rows_updated"]) == (0, 0)
    assert {t: lake.table_hash(t) for t in lake.tables()} == hashes
    out = format_summary(second)
    assert "0 rows inserted" in out and "8 symbols" in out and "2023-01-02..2023-12-29" in out


@pytest.mark.slow
def test_killed_backfill_resumes_without_duplicates(tmp_path: Path, prefect_harness: None) -> None:
    from flows.backfill import backfill

    killed = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "flows.backfill",
        "--source",
        "demo",
        "--data-dir",
        str(killed),
        "--start",
        str(START),
        "--end",
        str(END),
        "--chunk-days",
        "30",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if len(Lake(killed).manifest()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the backfill ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(Lake(killed).manifest())
    assert 2 <= done_before < 13

    resumed = backfill(start=START, end=END, source="demo", data_dir=killed, chunk_days=30)
    assert resumed["chunks_skipped"] == done_before
    assert resumed["chunks_run"] == 13 - done_before
    clean = tmp_path / "clean"
    backfill(start=START, end=END, source="demo", data_dir=clean, chunk_days=30)
    got, want = _tables(Lake(killed)), _tables(Lake(clean))
    assert got.keys() == want.keys()
    for table in want:
        pd.testing.assert_frame_equal(got[table], want[table])
    bars = got["bars"]
    assert not bars.duplicated(["ts_code", "trade_date"]).any()


@pytest.mark.slow
def test_local_backfill_is_one_chunk_by_default(
    tmp_path: Path, sample_dir: Path, prefect_harness: None
) -> None:
    """A folder is read in one pass: one chunk for five years, though the settings say 92 days (a size
    for tushare); a rerun of the finished job changes nothing."""
    from flows.backfill import backfill

    span = dict(start=dt.date(2020, 1, 1), end=dt.date(2024, 12, 31), source="local", local_dir=sample_dir)
    first = backfill(**span, data_dir=tmp_path)
    assert (first["chunks_run"], first["chunks_skipped"]) == (1, 0)
    assert {"bars", "index_daily", "stock_basic", "macro"} <= set(first["tables_used"])
    chunks = [e for e in Lake(tmp_path).manifest() if e["kind"] == "chunk"]
    assert [(e["start"], e["end"]) for e in chunks] == [("2020-01-01", "2024-12-31")]
    assert first["lake"]["bars"] == 12_120
    again = backfill(**span, data_dir=tmp_path)
    assert (again["chunks_run"], again["rows_inserted"], again["rows_updated"]) == (1, 0, 0)


@pytest.mark.slow
def test_tushare_backfill_fetches_reference_tables_once(
    tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tushare goes by chunks of trade dates (92 days: two for a half year); stock_basic and macro come
    once, with the first chunk, over the whole range."""
    from fakes import FakeClock, FakeTushareClient, today

    import flows.backfill
    from stockml.sources.tushare_source import TushareSource

    client, clock = FakeTushareClient(), FakeClock()
    source = TushareSource(client=client, sleep=clock.sleep, clock=clock, today=today)
    monkeypatch.setattr(flows.backfill, "make_source", lambda settings: source)
    done = flows.backfill.backfill(
        start=dt.date(2022, 1, 1), end=dt.date(2022, 6, 30), source="tushare", data_dir=tmp_path
    )
    assert done["chunks_run"] == 2
    assert [c.params["list_status"] for c in client.calls if c.endpoint == "stock_basic"] == ["L", "D", "P"]
    macro_calls = [client.count(m) for m in ("cn_cpi", "cn_ppi", "cn_pmi", "cn_m", "shibor")]
    assert macro_calls == [1] * 5
    open_days = Lake(tmp_path).read("bars")["trade_date"].nunique()
    assert client.count("index_daily") == 2 and client.count("daily") == open_days == 117  # H1 2022
    chunks = [e for e in Lake(tmp_path).manifest() if e["kind"] == "chunk"]
    assert ["stock_basic" in e["tables"] for e in chunks] == [True, False]
