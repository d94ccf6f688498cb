"""The pipeline on real A-share data (../shared/data/ashare_sample), with its real macro tables.

The default frame carries macro series as standardised changes; ``levels`` mode (raw values, their
changes and staleness days) is checked on the same data for users who still want it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from feature_helpers import load_ashare_sample

from stockml.features import FeatureConfig, FeatureResult, build_feature_frame, validate_features
from stockml.features.macro import table_columns
from stockml.sources.base import MarketData

CONFIG = FeatureConfig()
LEVELS = FeatureConfig(macro_mode="levels")


@pytest.fixture(scope="module")
def sample() -> MarketData:
    return load_ashare_sample()


@pytest.fixture(scope="module")
def result(sample: MarketData) -> FeatureResult:
    return build_feature_frame(sample, CONFIG)


@pytest.fixture(scope="module")
def levels(sample: MarketData) -> FeatureResult:
    return build_feature_frame(sample, LEVELS)


def test_real_features_pass_the_schema(result: FeatureResult, sample: MarketData) -> None:
    frame, summary = result.frame, result.summary
    validate_features(frame, result.feature_columns, result.label_columns)
    assert np.isfinite(frame[result.feature_columns].to_numpy()).all()
    assert summary["rows_in"] == len(sample.bars) == 12_120
    assert summary["warmup_rows_dropped"] == 10 * CONFIG.warmup
    assert summary["rows_out"] == len(frame) == 12_120 - 10 * CONFIG.warmup
    assert summary["return_sources"] == {"pct_chg": 12_120}
    assert summary["market_index"] == "000300.SH" and summary["index_missing_rows"] == 0
    assert set(summary["tables_used"]) == {"bars", "index_daily", "stock_basic", "macro"}
    assert all(c.isascii() and c.replace("_", "").isalnum() for c in frame.columns)
    assert json.loads(json.dumps(summary, ensure_ascii=False)) == summary  # loggable as is


def test_macro_series_keep_their_chinese_names(result: FeatureResult) -> None:
    series = {s["series"]: s for s in result.summary["macro_series"]}
    assert 0 < len(series) <= CONFIG.max_macro_series
    assert "CPI:环比" in series and "PMI" in series
    cpi = series["CPI:环比"]
    assert cpi["feature_columns"] == [f"{cpi['column']}__chg_z"] and cpi["lag_days"] == 15
    assert cpi["feature_columns"][0] in result.feature_columns
    assert {s["table"] for s in result.summary["macro_series"]} >= {"cn_cpi_ppi_mom_monthly", "shibor"}


def test_default_frame_has_stationary_macro_only(result: FeatureResult, levels: FeatureResult) -> None:
    macro_cols = [c for c in result.feature_columns if c.startswith("macro__")]
    tables = {s["table"] for s in result.summary["macro_series"]}
    assert sorted(macro_cols) == sorted(
        [f"{s['column']}__chg_z" for s in result.summary["macro_series"]]
        + [table_columns(t)[1] for t in tables]
    )
    assert not any(c.endswith(("__staleness_days", "__chg")) for c in result.feature_columns)
    # Standardised: no column sits at a level far from 0 the way M1 or a yield does.
    z = result.frame[[c for c in macro_cols if c.endswith("__chg_z")]]
    assert z.abs().median().max() < 2.0
    # Levels mode keeps the former columns: per series its value and change, per table days and flag.
    level_cols = {c for c in levels.feature_columns if c.startswith("macro__")}
    assert level_cols == {
        c for s in levels.summary["macro_series"] for c in (s["column"], f"{s['column']}__chg")
    } | {c for t in tables for c in table_columns(t)}
    assert [c for c in levels.feature_columns if not c.startswith("macro__")] == [
        c for c in result.feature_columns if not c.startswith("macro__")
    ]


def test_real_cpi_change_z_is_scaled_by_past_releases(result: FeatureResult, sample: MarketData) -> None:
    col = next(s["column"] for s in result.summary["macro_series"] if s["series"] == "CPI:环比")
    by_day = result.frame.drop_duplicates("trade_date").set_index("trade_date")[f"{col}__chg_z"]
    cpi = sample.macro.loc[sample.macro["series"] == "CPI:环比"].set_index("period_end")["value"].sort_index()
    changes = cpi.diff()
    for month_end in pd.to_datetime(["2023-11-30", "2024-06-30"]):
        k = changes.index.get_loc(month_end)
        past = changes.iloc[k - CONFIG.macro_z_window : k].to_numpy()  # the 24 releases before this one
        expected = (changes.iloc[k] - past.mean()) / past.std(ddof=1)
        first_day = by_day.index[by_day.index >= month_end + pd.Timedelta(days=15)][0]
        assert by_day[first_day] == pytest.approx(expected, rel=1e-9)
        assert by_day[by_day.index < first_day].iloc[-1] != pytest.approx(expected, rel=1e-9)


def test_real_vol_features_are_positive_and_track_realised_vol(result: FeatureResult) -> None:
    frame = result.frame
    assert (frame["vol_ewma"] > 0).all() and (frame["downside_vol_20"] >= 0).all()
    np.testing.assert_allclose(np.log(frame["vol_ewma"]), frame["vol_ewma_log_xs"], rtol=1e-12)
    assert frame["vol_ewma"].corr(frame["rv_20"]) > 0.8
    assert 0.7 < (frame["vol_ewma"] / frame["rv_60"]).median() < 1.3  # daily-return units
    # Returns in units of the previous day's sigma: close to unit scale on real data.
    assert 0.7 < frame["ret_1_std"].std() < 1.5


def test_real_cpi_is_used_only_after_release(levels: FeatureResult, sample: MarketData) -> None:
    col = next(s["column"] for s in levels.summary["macro_series"] if s["series"] == "CPI:环比")
    by_day = levels.frame.drop_duplicates("trade_date").set_index("trade_date")[col]
    macro = sample.macro
    cpi = macro.loc[macro["series"] == "CPI:环比"].set_index("period_end")["value"]
    for month_end in pd.to_datetime(["2023-11-30", "2024-06-30"]):
        release = month_end + pd.Timedelta(days=15)
        first_day = by_day.index[by_day.index >= release][0]
        last_before = by_day.index[by_day.index < release][-1]
        assert by_day[first_day] == cpi[month_end]
        assert by_day[last_before] == cpi[month_end - pd.offsets.MonthEnd(1)]


def test_shibor_is_flagged_stale_after_it_stops(result: FeatureResult, levels: FeatureResult) -> None:
    days_col, flag_col = table_columns("shibor")
    for frame in (result.frame, levels.frame):
        assert (frame.loc[frame["trade_date"] <= "2022-02-18", flag_col] == 0).all()
        assert (frame.loc[frame["trade_date"] >= "2022-03-15", flag_col] == 1).all()
    assert levels.frame.loc[levels.frame["trade_date"] >= "2023-03-01", days_col].eq(366).all()


def test_ex_dividend_days_use_pct_chg(result: FeatureResult, sample: MarketData) -> None:
    bars = sample.bars.sort_values(["ts_code", "trade_date"])
    prev_close = bars.groupby("ts_code")["close"].shift(1)
    ex = bars.loc[
        (bars["pre_close"] - prev_close).abs() > 1e-6, ["ts_code", "trade_date", "pct_chg", "close"]
    ]
    ex = ex.assign(raw=np.log(ex["close"] / prev_close.loc[ex.index]))
    joined = ex.merge(result.frame[["ts_code", "trade_date", "logret_1"]], on=["ts_code", "trade_date"])
    assert len(joined) > 30
    np.testing.assert_allclose(joined["logret_1"], np.log1p(joined["pct_chg"] / 100), rtol=1e-12)
    assert (np.abs(joined["logret_1"] - joined["raw"]) > 1e-3).mean() > 0.9


def test_banks_share_a_sector_and_see_each_other(result: FeatureResult) -> None:
    frame = result.frame
    banks = ["000001.SZ", "600036.SH", "601166.SH"]
    day = frame.loc[frame["trade_date"] == pd.Timestamp("2024-06-03")].set_index("ts_code")
    assert day.loc[banks, "sector_id"].nunique() == 1 and day.loc[banks, "sector_id"].iloc[0] > 0
    others = day.loc[["600036.SH", "601166.SH"], "logret_1"].mean()
    assert day.loc["000001.SZ", "sector_ret_ex_self"] == pytest.approx(others, abs=1e-15)
    nxt = frame.groupby("ts_code")["logret_1"].shift(-1)
    known = frame["label_h1"].notna() & nxt.notna()
    np.testing.assert_allclose(frame.loc[known, "label_h1"], nxt[known], atol=1e-12)
