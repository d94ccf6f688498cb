"""The local source on the real A-share sample, and on other tushare layouts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from stockml.sources.local import LocalSource
from stockml.store.ingest import validate_batch, write_batch
from stockml.store.lake import Lake

TODAY = dt.date(2026, 11, 27)
FULL = (dt.date(2020, 1, 1), dt.date(2024, 12, 31))


def test_sample_lands_whole_and_once(sample_dir: Path, tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    data = LocalSource(sample_dir).fetch(*FULL)
    assert data.tables_used() == ["bars", "index_daily", "stock_basic", "macro"]
    results = {r.table: r for r in write_batch(lake, validate_batch(data, TODAY, tmp_path, "s"))}
    assert results["bars"].inserted == 12_120
    bars = lake.read("bars")
    assert len(bars) == 12_120 and bars["ts_code"].nunique() == 10
    assert bars.groupby("ts_code").size().eq(1_212).all()
    again = write_batch(lake, validate_batch(LocalSource(sample_dir).fetch(*FULL), TODAY, tmp_path, "s"))
    assert sum(r.inserted + r.updated for r in again) == 0
    # raw prices are stored as given: the first bar of 600519.SH
    moutai = bars[(bars["ts_code"] == "600519.SH")].sort_values("trade_date").iloc[0]
    raw = pd.read_csv(sample_dir / "daily" / "600519.SH.csv").sort_values("trade_date").iloc[0]
    assert (str(moutai["trade_date"].date()), moutai["close"]) == ("2020-01-02", raw["close"])


def test_sample_macro_is_long_with_chinese_names(sample_dir: Path, tmp_path: Path) -> None:
    clean = validate_batch(LocalSource(sample_dir).fetch(*FULL), TODAY, tmp_path, "m")
    macro = clean.macro
    assert macro is not None
    cpi = macro[(macro["table"] == "cn_cpi_ppi_mom_monthly") & (macro["series"] == "CPI:环比")]
    assert cpi["freq"].eq("M").all()
    assert cpi["period_end"].max() == pd.Timestamp("2024-12-31")  # month 2024-12 -> its last day
    shibor = macro[macro["table"] == "shibor"]
    assert shibor["freq"].eq("D").all() and shibor["period_end"].max() == pd.Timestamp("2022-02-21")
    assert "qxmc" not in set(macro["series"])  # the curve's text label is not a series


def test_range_and_symbols_slice(sample_dir: Path) -> None:
    data = LocalSource(sample_dir).fetch(dt.date(2024, 12, 30), dt.date(2024, 12, 31), ["600519.SH"])
    assert len(data.bars) == 2
    assert LocalSource(sample_dir).trading_days(dt.date(2024, 12, 28), dt.date(2025, 1, 5)) == [
        dt.date(2024, 12, 30),
        dt.date(2024, 12, 31),
    ]


def test_combined_parquet_file_and_optional_tables(sample_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    daily = pd.concat(
        pd.read_csv(p, dtype={"trade_date": str}) for p in sorted((sample_dir / "daily").glob("*.csv"))
    )
    daily.sample(frac=1.0, random_state=0).to_parquet(root / "daily.parquet")  # any row order
    adj = daily[["ts_code", "trade_date"]].assign(adj_factor=1.5)
    adj.to_csv(root / "adj_factor.csv", index=False)
    sentiment = daily[["ts_code", "trade_date"]].head(50).assign(score=0.1)
    sentiment.to_csv(root / "sentiment.csv", index=False)
    data = LocalSource(root).fetch(*FULL)
    assert data.tables_used() == ["bars", "adj_factor", "sentiment"]
    clean = validate_batch(data, TODAY, tmp_path, "c")
    lake = Lake(tmp_path / "lake")
    results = {r.table: r.inserted for r in write_batch(lake, clean)}
    assert results == {"bars": 12_120, "adj_factor": 12_120, "sentiment": 50}
    per_file = validate_batch(LocalSource(sample_dir).fetch(*FULL), TODAY, tmp_path, "p").bars
    keys = ["ts_code", "trade_date"]
    stored = lake.read("bars").sort_values(keys).reset_index(drop=True)
    expected = per_file.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(stored, expected[stored.columns], check_dtype=False)
    assert lake.read("adj_factor")["adj_factor"].eq(1.5).all()
