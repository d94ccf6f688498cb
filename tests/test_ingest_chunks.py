"""Chunks as the source needs them, and reference tables once per job (library level, no Prefect).

A folder or the demo market is one chunk whatever ``ingest.chunk_days`` says; tushare goes by chunks of
trade dates and asks for stock_basic and macro once per job, with the first chunk still to do, also
when the job resumes after a crash.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from fakes import FakeClock, FakeTushareClient, _daily, today

from stockml.config import SettingsError
from stockml.sources.demo import DemoSource
from stockml.sources.local import LocalSource
from stockml.sources.tushare_errors import TushareAuthError
from stockml.sources.tushare_source import TushareConfig, TushareSource
from stockml.store.ingest import Chunk, check_one_market, chunk_days_for, ingest_range, plan_chunks
from stockml.store.lake import Lake

Q1 = (dt.date(2022, 1, 1), dt.date(2022, 3, 31))  # 58 open days; 300750.SZ splits 2-for-1 on 15 March
# One index, one list status: fewer calls to count; two macro endpoints, a monthly and a daily one.
CONFIG = {"list_statuses": ("L",), "macro_endpoints": ("cn_cpi", "shibor")}


def _tushare(client: FakeTushareClient) -> TushareSource:
    clock = FakeClock()
    return TushareSource(TushareConfig(**CONFIG), client=client, sleep=clock.sleep, clock=clock, today=today)


def test_chunk_size_is_the_sources_unless_forced(tmp_path: Path) -> None:
    local, demo, tushare = LocalSource(tmp_path), DemoSource(), TushareSource()
    assert [chunk_days_for(s, None, 92) for s in (local, demo)] == [None, None]  # the setting is for tushare
    assert [chunk_days_for(tushare, None, c) for c in (None, 30)] == [92, 30]
    assert [chunk_days_for(s, 10, 92) for s in (local, demo, tushare)] == [10, 10, 10]  # --chunk-days
    assert plan_chunks(*Q1, None) == [Chunk(*Q1)]
    assert [(c.start.month, c.end.month) for c in plan_chunks(*Q1, 31)] == [(1, 1), (2, 3), (3, 3)]


def test_local_ingest_is_one_chunk_with_every_table(sample_dir: Path, tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    entries = ingest_range(lake, LocalSource(sample_dir), "local:t", dt.date(2020, 1, 1), Q1[1], None, 92)
    assert [(e["start"], e["end"]) for e in entries] == [("2020-01-01", "2022-03-31")]
    assert set(entries[0]["tables"]) == {"bars", "index_daily", "stock_basic", "macro"}
    assert lake.read("bars")["trade_date"].min() == pd.Timestamp("2020-01-02")


def test_tushare_chunks_fetch_reference_tables_once(tmp_path: Path) -> None:
    client = FakeTushareClient()
    lake = Lake(tmp_path)
    entries = ingest_range(lake, _tushare(client), "tushare:t", *Q1, None, chunk_days=31)

    assert len(entries) == 3
    assert [set(e["tables"]) & {"stock_basic", "macro"} for e in entries] == [
        {"stock_basic", "macro"},
        set(),
        set(),
    ]
    assert (client.count("stock_basic"), client.count("cn_cpi"), client.count("shibor")) == (1, 1, 1)
    cpi = next(c for c in client.calls if c.endpoint == "cn_cpi")
    assert cpi.params == {"start_m": "202110", "end_m": "202203"}  # the whole job, with its lookback
    shibor = next(c for c in client.calls if c.endpoint == "shibor")
    assert shibor.params == {"start_date": "20220101", "end_date": "20220331"}
    open_days = len(_tushare(FakeTushareClient()).trading_days(*Q1))
    assert client.count("daily") == open_days == len(lake.read("bars")["trade_date"].unique()) == 58
    assert set(lake.read("macro")["table"]) == {"cn_cpi", "shibor"} and len(lake.read("stock_basic")) > 0


def test_resumed_tushare_job_fetches_reference_tables_again_once(tmp_path: Path) -> None:
    """A crash in the second chunk keeps the first (with the reference tables); the rerun skips it and
    asks for the reference tables once more, with the first chunk it still has to write."""
    client = FakeTushareClient()

    def daily_failing_in_february(trade_date: str, **_: object) -> pd.DataFrame:
        if trade_date.startswith("202202"):
            raise Exception("抱歉，您的token不对，请确认。")  # a bad token: fatal, no retry
        return _daily(trade_date)

    client.handlers["daily"] = daily_failing_in_february
    lake = Lake(tmp_path / "resumed")
    with pytest.raises(TushareAuthError):
        ingest_range(lake, _tushare(client), "tushare:t", *Q1, None, chunk_days=31)
    assert [e["start"] for e in lake.manifest()] == ["2022-01-01"]
    assert client.count("stock_basic") == 1

    client.handlers["daily"] = _daily
    entries = ingest_range(lake, _tushare(client), "tushare:t", *Q1, None, chunk_days=31)
    assert [e["start"] for e in entries] == ["2022-02-01", "2022-03-04"]
    assert "stock_basic" in entries[0]["tables"] and "stock_basic" not in entries[1]["tables"]
    assert client.count("stock_basic") == 2

    clean = Lake(tmp_path / "clean")
    ingest_range(clean, _tushare(FakeTushareClient()), "tushare:t", *Q1, None, chunk_days=31)
    for table in clean.tables():
        keys = list(clean.read(table).columns[:2])
        got = lake.read(table).sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, clean.read(table).sort_values(keys).reset_index(drop=True))


def test_simulated_and_real_bars_never_share_a_lake(tmp_path: Path) -> None:
    """The demo market's codes are real listed codes: a demo ingest into a lake of real bars (or the
    reverse) is refused before anything is fetched or written; real sources together are fine."""
    for name in ("lake", "demo"):
        (tmp_path / name).mkdir()
    lake = Lake(tmp_path / "lake")
    lake.append_manifest({"kind": "chunk", "source": "local:1a2b3c4d", "start": "2024-01-02"})
    check_one_market(lake, "tushare:00000000")  # real beside real
    with pytest.raises(SettingsError, match="simulated and real bars share ts_codes.*--data-dir"):
        check_one_market(lake, "demo:deadbeef")
    demo = Lake(tmp_path / "demo")
    demo.append_manifest({"kind": "chunk", "source": "demo:deadbeef"})
    check_one_market(demo, "demo:0badcafe")  # another demo config: still simulated
    with pytest.raises(SettingsError, match="holds demo data and this ingest is local"):
        check_one_market(demo, "local:1a2b3c4d")
    check_one_market(Lake(tmp_path / "empty"), "demo:deadbeef")
