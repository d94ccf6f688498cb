"""Point-in-time: nothing after day t changes a feature at or before t; lags and flags do their job.

The perturbation test runs over every feature column of the frame, in both macro modes that produce
columns (``changes``, the default, and ``levels``), so new features are covered as they are added.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feature_helpers import synthetic_market
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pandera import errors as pa_errors

from stockml.features import FeatureConfig, build_feature_frame, prices_from_log_returns, validate_features
from stockml.features.macro import safe_name, table_columns
from stockml.sources.base import MarketData

CONFIG = FeatureConfig(horizon=3)
CONFIGS = {mode: FeatureConfig(horizon=3, macro_mode=mode) for mode in ("changes", "levels")}
N_DAYS = 110
KEYS = ["ts_code", "trade_date", "sector_id"]
VOL_COLUMNS = ["rv_60", "vol_ewma", "vol_ewma_log_xs", "downside_vol_20", "vol_of_vol_60", "ret_1_std"]


@lru_cache(maxsize=8)
def market(seed: int) -> MarketData:
    return synthetic_market(n_symbols=4, n_days=N_DAYS, seed=seed)


@lru_cache(maxsize=8)
def baseline(seed: int, mode: str = "changes") -> pd.DataFrame:
    return build_feature_frame(market(seed), CONFIGS[mode]).frame


def _after(frame: pd.DataFrame, col: str, cutoff: pd.Timestamp) -> np.ndarray:
    return (frame[col] > cutoff).to_numpy()


def perturb(data: MarketData, cutoff: pd.Timestamp, drop: bool, rng: np.random.Generator) -> MarketData:
    """Drop, or change, every row of every dated table that is not yet known at the close of ``cutoff``."""

    def change(frame: pd.DataFrame, late: np.ndarray, cols: dict[str, str]) -> pd.DataFrame:
        if drop:
            return frame.loc[~late].reset_index(drop=True)
        out = frame.copy()
        for c, how in cols.items():
            noise = rng.uniform(0.5, 2.0, int(late.sum()))
            out.loc[late, c] = out.loc[late, c] * noise if how == "scale" else out.loc[late, c] + noise
        return out

    bars = data.bars
    price_scale = {c: "scale" for c in ("open", "high", "low", "close", "pre_close", "vol", "amount")}
    macro = data.macro
    assert macro is not None
    lags = np.array([CONFIG.macro_lag(t, f) for t, f in zip(macro["table"], macro["freq"], strict=True)])
    macro_late = (macro["period_end"] + pd.to_timedelta(lags, unit="D") > cutoff).to_numpy()
    return data.with_tables(
        bars=change(bars, _after(bars, "trade_date", cutoff), {**price_scale, "pct_chg": "shift"}),
        adj_factor=change(
            data.adj_factor, _after(data.adj_factor, "trade_date", cutoff), {"adj_factor": "scale"}
        ),
        index_daily=change(
            data.index_daily,
            _after(data.index_daily, "trade_date", cutoff),
            {"close": "scale", "pct_chg": "shift"},
        ),
        macro=change(macro, macro_late, {"value": "shift"}),
        sentiment=change(data.sentiment, _after(data.sentiment, "trade_date", cutoff), {"score": "shift"}),
    )


@pytest.mark.parametrize("mode", sorted(CONFIGS))
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2),
    cut=st.integers(CONFIG.warmup, N_DAYS - 2),
    drop=st.booleans(),
    noise_seed=st.integers(0, 2**16),
)
def test_nothing_after_t_changes_features_up_to_t(
    mode: str, seed: int, cut: int, drop: bool, noise_seed: int
) -> None:
    data = market(seed)
    cutoff = pd.bdate_range("2021-01-04", periods=N_DAYS)[cut]
    before = baseline(seed, mode)
    perturbed = perturb(data, cutoff, drop, np.random.default_rng(noise_seed))
    after = build_feature_frame(perturbed, CONFIGS[mode]).frame
    features = [c for c in before.columns if not c.startswith("label_")]
    old = before.loc[before["trade_date"] <= cutoff, features].reset_index(drop=True)
    new = after.loc[after["trade_date"] <= cutoff, features].reset_index(drop=True)
    assume(len(old) > 0)  # before the first output date there is nothing to compare
    pd.testing.assert_frame_equal(old, new, check_exact=True)


def test_the_perturbation_test_sees_the_vol_and_macro_columns() -> None:
    """Guard: the frames the PIT test compares hold the volatility features and each macro mode's columns."""
    changes, levels = baseline(0, "changes"), baseline(0, "levels")
    assert set(VOL_COLUMNS) <= set(changes.columns) and set(VOL_COLUMNS) <= set(levels.columns)
    z_cols = [c for c in changes.columns if c.endswith("__chg_z")]
    assert len(z_cols) == 2 and changes[z_cols].ne(0).any().all()  # CPI and SHIBOR, not constant
    assert {c for c in levels.columns if c.startswith("macro__")} >= {
        "macro__shibor__on",
        "macro__shibor__on__chg",
        "macro__shibor__staleness_days",
        "macro__shibor__stale_flag",
    }


def test_perturbation_reaches_labels() -> None:
    """Control: the same perturbation does change labels at t (they look forward), so the test has teeth."""
    cutoff = pd.bdate_range("2021-01-04", periods=N_DAYS)[90]
    before = baseline(0)
    after = build_feature_frame(perturb(market(0), cutoff, False, np.random.default_rng(1)), CONFIG).frame
    at_t = before["trade_date"] == cutoff
    assert not np.allclose(before.loc[at_t, "label_h1"], after.loc[after["trade_date"] == cutoff, "label_h1"])


def _cpi_frame(lag_days: int | None = None, mode: str = "levels") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Levels by default: these tests follow a raw value and its age through the join."""
    data = synthetic_market(n_symbols=2, n_days=140, seed=5, sentiment=False)
    lags = {"cn_cpi_ppi_mom_monthly": lag_days} if lag_days is not None else {}
    config = FeatureConfig(macro_lag_days={**CONFIG.macro_lag_days, **lags}, macro_mode=mode)
    return build_feature_frame(data, config).frame, data.macro


def test_monthly_value_appears_on_release_day_not_before() -> None:
    frame, macro = _cpi_frame()
    col = f"macro__cn_cpi_ppi_mom_monthly__{safe_name('CPI:环比')}"
    cpi = macro.loc[macro["series"] == "CPI:环比"].set_index("period_end")["value"]
    by_day = frame.drop_duplicates("trade_date").set_index("trade_date")[col]
    # With the default lag (15 days) May's CPI is usable from 15 June 2021 (a Tuesday): 14 June
    # still shows April's value, released on 15 May (a Saturday), so 30 days old.
    assert by_day[pd.Timestamp("2021-06-14")] == cpi[pd.Timestamp("2021-04-30")]
    assert by_day[pd.Timestamp("2021-06-15")] == cpi[pd.Timestamp("2021-05-31")]
    stale_days, _ = table_columns("cn_cpi_ppi_mom_monthly")
    assert frame.loc[frame["trade_date"] == pd.Timestamp("2021-06-15"), stale_days].iloc[0] == 0
    assert frame.loc[frame["trade_date"] == pd.Timestamp("2021-06-14"), stale_days].iloc[0] == 30
    # A configured lag moves the release day.
    frame10, _ = _cpi_frame(lag_days=10)
    by_day10 = frame10.drop_duplicates("trade_date").set_index("trade_date")[col]
    assert by_day10[pd.Timestamp("2021-06-10")] == cpi[pd.Timestamp("2021-05-31")]
    assert by_day10[pd.Timestamp("2021-06-09")] == cpi[pd.Timestamp("2021-04-30")]


def test_a_series_that_stops_is_flagged_stale() -> None:
    frame, macro = _cpi_frame()
    days_col, flag_col = table_columns("shibor")
    last_obs = macro.loc[macro["table"] == "shibor", "period_end"].max()
    late = frame["trade_date"] > last_obs + pd.Timedelta(days=CONFIG.max_staleness_days["D"] + 1)
    early = frame["trade_date"] <= last_obs
    assert (frame.loc[late, flag_col] == 1).all() and late.any()
    assert (frame.loc[early, flag_col] == 0).all() and early.any()
    one = frame.loc[late & (frame["ts_code"] == frame["ts_code"].iloc[0]), days_col]
    assert one.is_monotonic_increasing and one.iloc[-1] > one.iloc[0]
    # The default (changes) mode keeps the same flag, without the days column.
    changes, _ = _cpi_frame(mode="changes")
    pd.testing.assert_series_equal(changes[flag_col], frame[flag_col])
    assert days_col not in changes.columns


def test_sentiment_is_lagged_and_missing_is_flagged() -> None:
    data = synthetic_market(n_symbols=2, n_days=100, seed=6)
    frame = build_feature_frame(data, FeatureConfig(sentiment_lag=1, sentiment_neutral=0.0)).frame
    scores = data.sentiment.set_index(["ts_code", "trade_date"])["score"]
    prev = data.bars.sort_values(["ts_code", "trade_date"]).assign(
        prev_date=lambda b: b.groupby("ts_code")["trade_date"].shift(1)
    )
    row = frame.iloc[10]
    prev_day = prev.loc[
        (prev["ts_code"] == row["ts_code"]) & (prev["trade_date"] == row["trade_date"]), "prev_date"
    ]
    key = (row["ts_code"], prev_day.iloc[0])
    if key in scores.index:
        assert row["sentiment"] == scores[key] and row["sentiment_missing_flag"] == 0
    else:
        assert row["sentiment"] == 0.0 and row["sentiment_missing_flag"] == 1
    missing = frame["sentiment_missing_flag"] == 1
    assert missing.any() and (frame.loc[missing, "sentiment"] == 0.0).all()


def test_sector_mean_excludes_the_stock_itself() -> None:
    data = synthetic_market(n_symbols=7, n_days=90, seed=8, macro=False, sentiment=False)
    frame = build_feature_frame(data, CONFIG).frame
    day = frame.loc[frame["trade_date"] == frame["trade_date"].max()]
    for _, row in day.iterrows():
        peers = day.loc[
            (day["sector_id"] == row["sector_id"]) & (day["ts_code"] != row["ts_code"]), "logret_1"
        ]
        expected = peers.mean() if row["sector_id"] != 0 and len(peers) else 0.0
        assert row["sector_ret_ex_self"] == pytest.approx(expected, abs=1e-15)


def test_labels_are_forward_adjusted_log_returns() -> None:
    data = synthetic_market(n_symbols=2, n_days=90, seed=9, macro=False, sentiment=False)
    frame = build_feature_frame(data, CONFIG).frame
    bars = data.bars.merge(data.adj_factor, on=["ts_code", "trade_date"]).sort_values(
        ["ts_code", "trade_date"]
    )
    adj = np.log(bars["close"] * bars["adj_factor"]).to_numpy()
    merged = frame.merge(bars.assign(adj=adj)[["ts_code", "trade_date", "adj"]], on=["ts_code", "trade_date"])
    for k in (1, 3):
        future = merged.groupby("ts_code")["adj"].transform(lambda s, k=k: s.shift(-k))  # noqa: B023
        np.testing.assert_allclose(merged[f"label_h{k}"], future - merged["adj"], atol=1e-10)
    assert merged.groupby("ts_code")["label_h3"].apply(lambda s: s.tail(3).isna().all()).all()
    # Reporting prices come back from the labels: adj_close[t] * exp(label_hk) = adj_close[t+k].
    paths = prices_from_log_returns(
        np.exp(merged["adj"]).to_numpy(), merged[["label_h1", "label_h3"]].to_numpy()
    )
    future3 = np.exp(merged.groupby("ts_code")["adj"].transform(lambda s: s.shift(-3)))
    known = future3.notna().to_numpy()
    np.testing.assert_allclose(paths[known, 1], future3[known], rtol=1e-10)


FORWARD = re.compile(r"shift\(\s*(periods\s*=\s*)?-")


def test_only_the_labels_module_reads_the_future() -> None:
    package = Path(__file__).resolve().parents[1] / "stockml"
    offenders = [
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if p != package / "features" / "labels.py" and FORWARD.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert FORWARD.search((package / "features" / "labels.py").read_text(encoding="utf-8"))


def test_schema_lists_every_bad_value() -> None:
    result = build_feature_frame(market(0), CONFIG)
    bad = result.frame.copy()
    bad.loc[3, "rsi"] = np.nan
    bad.loc[7, "macd_dif"] = np.inf
    bad.loc[9, "label_h1"] = -np.inf
    bad = bad.assign(undeclared=1.0)
    with pytest.raises(pa_errors.SchemaErrors) as caught:
        validate_features(bad, result.feature_columns, result.label_columns)
    cases = caught.value.failure_cases
    assert {"rsi", "macd_dif", "label_h1", "undeclared"} <= set(cases["column"].astype(str)) | set(
        cases["failure_case"].astype(str)
    )
    assert set(cases.loc[cases["column"] == "macd_dif", "index"]) == {7}


def test_a_gap_after_warmup_is_refused_not_filled() -> None:
    data = market(1)
    late_row = data.bars.index[data.bars.groupby("ts_code").cumcount() == CONFIG.warmup + 5][0]
    with pytest.raises(pa_errors.SchemaErrors, match="vol_z"):
        build_feature_frame(
            data.with_tables(bars=data.bars.assign(vol=data.bars["vol"].where(data.bars.index != late_row))),
            CONFIG,
        )


def test_macro_names_selection_and_caps() -> None:
    # Stable across runs and machines: slug + first 8 hex of sha1 of the original name.
    assert safe_name("CPI:环比") == "CPI_13e01eca" and safe_name("on") == "on"
    assert safe_name("社会融资规模存量") == "h7a4f4fd6"
    data = market(0)
    only = build_feature_frame(data, FeatureConfig(horizon=3, macro_series=("shibor/on",)))
    assert [s["column"] for s in only.summary["macro_series"]] == ["macro__shibor__on"]
    assert not any("cn_cpi" in c for c in only.feature_columns)
    capped = build_feature_frame(data, FeatureConfig(horizon=3, max_macro_series=1))
    assert len(capped.summary["macro_series"]) == 1
    with pytest.raises(ValueError, match="not in the macro table"):
        build_feature_frame(data, FeatureConfig(horizon=3, macro_series=("shibor/2y",)))
