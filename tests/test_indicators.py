"""Indicators and returns against hand-computed values and independent loop implementations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from feature_helpers import synthetic_market

from stockml.features import FeatureConfig
from stockml.features.indicators import atr, boll, cci, donchian, indicator_features, kdj, macd, rsi, trix
from stockml.features.indicators import dmi as dmi_
from stockml.features.returns import RET_1D, adjust_prices, return_features


def col(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"s": np.asarray(values, dtype=float)})


def last(frame: pd.DataFrame) -> float:
    return float(frame["s"].iloc[-1])


# --- literal cases worked out by hand -------------------------------------------------------------


def test_kdj_by_hand() -> None:
    # n=3: day 3 RSV = (11.5-9)/(12-9) = 83.33 seeds K and D; day 4 RSV = (10-9)/3 = 33.33,
    # K = 2/3*83.33 + 1/3*33.33 = 66.67, D = 2/3*83.33 + 1/3*66.67 = 77.78, J = 3K - 2D = 44.44.
    h, lo, c = col([10, 11, 12, 11]), col([9, 10, 10, 9]), col([9.5, 10.5, 11.5, 10])
    k, d, j = kdj(c, h, lo, n=3)
    assert np.isnan(k["s"].iloc[1])
    assert k["s"].iloc[2] == pytest.approx(250 / 3)
    assert last(k) == pytest.approx(200 / 3)
    assert last(d) == pytest.approx(700 / 9)
    assert last(j) == pytest.approx(400 / 9)


def test_boll_by_hand() -> None:
    up, mid, low = boll(col([1, 2, 3, 4, 5]), n=5, k=2)
    assert last(mid) == 3.0
    assert last(up) == pytest.approx(3 + 2 * math.sqrt(2))  # population std of 1..5 is sqrt(2)
    assert last(low) == pytest.approx(3 - 2 * math.sqrt(2))


def test_cci_by_hand() -> None:
    # TP = 1, 2, 6: MA 3, mean absolute deviation (2 + 1 + 3) / 3 = 2, CCI = (6 - 3) / (0.015 * 2) = 100.
    x = col([1, 2, 6])
    assert last(cci(x, x, x, n=3)) == pytest.approx(100.0)


def test_atr_by_hand() -> None:
    # TR day 2 = max(12-10, |12-9.5|, |10-9.5|) = 2.5; day 3 = max(11-8, |11-11|, |8-11|) = 3.
    tr = atr(col([9.5, 11, 9]), col([10, 12, 11]), col([9, 10, 8]), n=2)
    assert last(tr) == pytest.approx(2.75)


def test_rsi_by_hand() -> None:
    # changes 1, -1, 2; Wilder n=2: gains 1, 0.5, 1.25; moves 1, 1, 1.5 -> RSI 83.33.
    assert last(rsi(col([1, 2, 1, 3]), n=2)) == pytest.approx(250 / 3)
    assert last(rsi(col([1, 1, 1, 1]), n=2)) == 50.0  # flat: neutral, not NaN


def test_macd_by_hand() -> None:
    # spans 1 and 3 (alpha 1 and 0.5): EMA1 = C; EMA3 = 1, 1.5, 2.25; DIF = 0, 0.5, 0.75;
    # DEA (span 3) = 0, 0.25, 0.5; histogram = 2 * (DIF - DEA) = 0.5.
    dif, dea, hist = macd(col([1, 2, 3]), fast=1, slow=3, signal=3)
    assert (last(dif), last(dea), last(hist)) == pytest.approx((0.75, 0.5, 0.5))


def test_donchian_by_hand() -> None:
    up, mid, down = donchian(col([3, 5, 4, 2]), col([1, 2, 3, 1]), n=3)
    assert (last(up), last(mid), last(down)) == (5.0, 3.0, 1.0)


def test_dmi_by_hand() -> None:
    # n=2, m=1. Day 2: up 1, down 0 -> +DM 1; TR 2. Day 3: up -1, down 2 -> -DM 2; TR 3.
    # PDI = 100 * 1 / 5 = 20, MDI = 100 * 2 / 5 = 40, ADX = DX = 100 * 20 / 60.
    h, lo, c = col([10, 11, 10]), col([9, 9, 7]), col([9.5, 10, 8])
    pdi, mdi, adx, _ = dmi_(c, h, lo, n=2, m=1)
    assert (last(pdi), last(mdi), last(adx)) == pytest.approx((20.0, 40.0, 100 / 3))


# --- loop implementations of the textbook formulas -------------------------------------------------


def ref_ewm(xs: list[float], alpha: float) -> list[float]:
    out, y = [], math.nan
    for x in xs:
        if math.isnan(x):
            out.append(y)
            continue
        y = x if math.isnan(y) else alpha * x + (1 - alpha) * y
        out.append(y)
    return out


def ref_trix(c: list[float], n: int, m: int) -> tuple[list[float], list[float]]:
    a = 2 / (n + 1)
    tr = ref_ewm(ref_ewm(ref_ewm(c, a), a), a)
    value = [math.nan] + [(tr[i] / tr[i - 1] - 1) * 100 for i in range(1, len(tr))]
    ma = [math.nan] * (m) + [sum(value[i - m + 1 : i + 1]) / m for i in range(m, len(value))]
    return value, ma


def ref_dmi(h: list[float], lo: list[float], c: list[float], n: int, m: int) -> tuple[list[float], ...]:
    size = len(c)
    tr, pdm, mdm = [math.nan] * size, [math.nan] * size, [math.nan] * size
    for i in range(1, size):
        tr[i] = max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1]))
        up, down = h[i] - h[i - 1], lo[i - 1] - lo[i]
        pdm[i] = up if up > 0 and up > down else 0.0
        mdm[i] = down if down > 0 and down > up else 0.0
    pdi, mdi, dx = [math.nan] * size, [math.nan] * size, [math.nan] * size
    for i in range(n, size):
        trs = sum(tr[i - n + 1 : i + 1])
        pdi[i] = 100 * sum(pdm[i - n + 1 : i + 1]) / trs
        mdi[i] = 100 * sum(mdm[i - n + 1 : i + 1]) / trs
        dx[i] = 100 * abs(mdi[i] - pdi[i]) / (mdi[i] + pdi[i])
    adx = [math.nan] * size
    for i in range(n + m - 1, size):
        adx[i] = sum(dx[i - m + 1 : i + 1]) / m
    adxr = [math.nan] * m + [(adx[i] + adx[i - m]) / 2 for i in range(m, size)]
    return pdi, mdi, adx, adxr


def ref_cci(tp: list[float], n: int) -> list[float]:
    out = [math.nan] * len(tp)
    for i in range(n - 1, len(tp)):
        w = tp[i - n + 1 : i + 1]
        mean = sum(w) / n
        out[i] = (tp[i] - mean) / (0.015 * sum(abs(x - mean) for x in w) / n)
    return out


def ref_rsi(c: list[float], n: int) -> list[float]:
    change = [math.nan] + [c[i] - c[i - 1] for i in range(1, len(c))]
    gain = ref_ewm([max(x, 0.0) if not math.isnan(x) else x for x in change], 1 / n)
    move = ref_ewm([abs(x) for x in change], 1 / n)
    return [g / m * 100 for g, m in zip(gain, move, strict=True)]


@pytest.fixture
def ohlc() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Three symbols of different lengths in one panel (NaN padding after the shorter ones)."""
    rng = np.random.default_rng(7)
    c = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, (90, 3)), axis=0))
    h = c * np.exp(np.abs(rng.normal(0, 0.01, c.shape)))
    lo = c * np.exp(-np.abs(rng.normal(0, 0.01, c.shape)))
    for arr in (c, h, lo):
        arr[70:, 1] = np.nan
        arr[50:, 2] = np.nan
    return pd.DataFrame(c), pd.DataFrame(h), pd.DataFrame(lo)


def assert_columns(actual: pd.DataFrame, reference: list[list[float]], lengths: tuple[int, ...]) -> None:
    for j, n in enumerate(lengths):
        # Only the symbol's own rows matter (padding after them is never read back).
        np.testing.assert_allclose(actual.iloc[:n, j].to_numpy(), reference[j][:n], rtol=1e-9, atol=1e-12)


LENGTHS = (90, 70, 50)


def _cols(frame: pd.DataFrame, j: int) -> list[float]:
    return frame.iloc[: LENGTHS[j], j].tolist()


def test_trix_matches_loop(ohlc: tuple[pd.DataFrame, ...]) -> None:
    c, _, _ = ohlc
    value, ma = trix(c, n=12, m=20)
    assert_columns(value, [ref_trix(_cols(c, j), 12, 20)[0] for j in range(3)], LENGTHS)
    assert_columns(ma, [ref_trix(_cols(c, j), 12, 20)[1] for j in range(3)], LENGTHS)


def test_dmi_matches_loop(ohlc: tuple[pd.DataFrame, ...]) -> None:
    c, h, lo = ohlc
    got = dmi_(c, h, lo, n=14, m=6)
    refs = [ref_dmi(_cols(h, j), _cols(lo, j), _cols(c, j), 14, 6) for j in range(3)]
    for k in range(4):
        assert_columns(got[k], [r[k] for r in refs], LENGTHS)


def test_cci_and_rsi_match_loop(ohlc: tuple[pd.DataFrame, ...]) -> None:
    c, h, lo = ohlc
    tp = (h + lo + c) / 3
    assert_columns(cci(c, h, lo, n=14), [ref_cci(_cols(tp, j), 14) for j in range(3)], LENGTHS)
    assert_columns(rsi(c, n=14), [ref_rsi(_cols(c, j), 14) for j in range(3)], LENGTHS)


def test_macd_matches_loop(ohlc: tuple[pd.DataFrame, ...]) -> None:
    c, _, _ = ohlc
    dif, dea, hist = macd(c)
    for j in range(3):
        xs = _cols(c, j)
        ref_dif = [a - b for a, b in zip(ref_ewm(xs, 2 / 13), ref_ewm(xs, 2 / 27), strict=True)]
        ref_dea = ref_ewm(ref_dif, 2 / 10)
        np.testing.assert_allclose(dif.iloc[: LENGTHS[j], j], ref_dif, rtol=1e-9)
        np.testing.assert_allclose(hist.iloc[: LENGTHS[j], j], 2 * (np.array(ref_dif) - ref_dea), atol=1e-12)


# --- feature frames: scale-free and causal -----------------------------------------------------------


def test_indicator_features_are_scale_free() -> None:
    prices = adjust_prices(synthetic_market(n_symbols=2, n_days=150, seed=1, macro=False).bars)
    scaled = prices.assign(**{c: prices[c] * 7.0 for c in ("adj_open", "adj_high", "adj_low", "adj_close")})
    a, b = indicator_features(prices, FeatureConfig()), indicator_features(scaled, FeatureConfig())
    pd.testing.assert_frame_equal(a, b, rtol=1e-9)
    after_warmup = prices.groupby("ts_code").cumcount().to_numpy() >= FeatureConfig().warmup
    assert a.loc[after_warmup].notna().all().all()


def test_returns_follow_adjustment_not_raw_close() -> None:
    data = synthetic_market(n_symbols=3, n_days=200, seed=2)
    with_adj = adjust_prices(data.bars, data.adj_factor)
    assert (with_adj["_ret_source"].iloc[1:] != "none").all()
    # adj_factor and pct_chg are two routes to the same true return.
    from_pct = adjust_prices(data.bars)
    np.testing.assert_allclose(with_adj[RET_1D], from_pct[RET_1D], atol=1e-12)
    # On ex-dividend days the raw close difference is wrong; the adjusted return is not.
    raw = np.log(with_adj["close"] / with_adj.groupby("ts_code")["close"].shift(1))
    factor = with_adj.merge(data.adj_factor, on=["ts_code", "trade_date"])["adj_factor"]
    ex_day = factor.ne(factor.groupby(with_adj["ts_code"]).shift(1)) & raw.notna()
    assert ex_day.sum() > 0
    assert (np.abs(raw[ex_day] - with_adj.loc[ex_day, RET_1D]) > 1e-3).all()
    feats = return_features(with_adj, FeatureConfig())
    k = 30
    expected = np.log(with_adj["adj_close"] / with_adj.groupby("ts_code")["adj_close"].shift(5))
    np.testing.assert_allclose(feats["logret_5"].iloc[k:60], expected.iloc[k:60], atol=1e-12)


def test_return_fallbacks_and_refusal() -> None:
    bars = synthetic_market(n_symbols=1, n_days=10, seed=3, macro=False, sentiment=False).bars
    no_pct = bars.assign(pct_chg=np.nan)
    np.testing.assert_allclose(adjust_prices(no_pct)[RET_1D], adjust_prices(bars)[RET_1D], atol=1e-12)
    assert (adjust_prices(no_pct)["_ret_source"] == "pre_close").all()
    with pytest.raises(ValueError, match="raw close differences"):
        adjust_prices(bars.assign(pct_chg=np.nan, pre_close=np.nan))
