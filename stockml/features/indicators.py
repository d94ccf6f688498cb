"""Technical indicators, causal, in the Tongdaxin / MyTT conventions that Chinese research code uses.

Every function takes panels (a DataFrame whose columns are symbols and whose rows are each symbol's own
trading days, see :mod:`stockml.features.panel`; a one-column frame is fine) and only looks back:
rolling windows end today, EMAs are recursive (``adjust=False``, seeded with the first value).
Conventions: ``EMA(X, N)`` = ``ewm(span=N)``; ``SMA(X, N, M)`` = ``ewm(alpha=M/N)`` (Wilder smoothing
for M=1); MACD histogram = ``2 * (DIF - DEA)``; standard deviations are population (ddof=0).
:func:`indicator_features` expresses price levels relative to close so symbols are comparable.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from stockml.features.config import FeatureConfig
from stockml.features.panel import PanelIndex, panel_index

Panel: TypeAlias = pd.DataFrame


def ema(x: Panel, n: int) -> Panel:
    return x.ewm(span=n, adjust=False).mean()


def sma(x: Panel, n: int, m: int = 1) -> Panel:
    """Tongdaxin SMA: ``Y = (M*X + (N-M)*Y') / N``."""
    return x.ewm(alpha=m / n, adjust=False).mean()


def _true_range(close: Panel, high: Panel, low: Panel) -> Panel:
    prev = close.shift(1)
    return np.maximum(np.maximum(high - low, (high - prev).abs()), (low - prev).abs())


def macd(close: Panel, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[Panel, Panel, Panel]:
    """DIF = EMA(C, fast) - EMA(C, slow); DEA = EMA(DIF, signal); histogram = 2 * (DIF - DEA)."""
    dif = ema(close, fast) - ema(close, slow)
    dea = ema(dif, signal)
    return dif, dea, 2.0 * (dif - dea)


def kdj(
    close: Panel, high: Panel, low: Panel, n: int = 9, m1: int = 3, m2: int = 3
) -> tuple[Panel, Panel, Panel]:
    """RSV over ``n`` days; K = SMA(RSV, m1, 1); D = SMA(K, m2, 1); J = 3K - 2D (0..100 scale).

    A day whose n-day range is zero has an undefined RSV; it is taken as 50 (neutral).
    """
    lowest, highest = low.rolling(n).min(), high.rolling(n).max()
    rsv = (close - lowest) / (highest - lowest) * 100.0
    rsv = rsv.mask(lowest.notna() & (highest - lowest <= 0), 50.0)
    k = sma(rsv, m1)
    d = sma(k, m2)
    return k, d, 3.0 * k - 2.0 * d


def boll(close: Panel, n: int = 20, k: float = 2.0) -> tuple[Panel, Panel, Panel]:
    """Bollinger bands: MA(C, n) -/+ k population standard deviations."""
    mid = close.rolling(n).mean()
    width = k * close.rolling(n).std(ddof=0)
    return mid + width, mid, mid - width


def _mean_abs_dev(x: Panel, n: int) -> Panel:
    """Rolling mean absolute deviation from the window's own mean (Tongdaxin AVEDEV)."""
    values = x.to_numpy(np.float64)
    out = np.full(values.shape, np.nan)
    if len(values) >= n:
        win = sliding_window_view(values, n, axis=0)  # (rows - n + 1, syms, n)
        out[n - 1 :] = np.abs(win - win.mean(axis=-1, keepdims=True)).mean(axis=-1)
    return pd.DataFrame(out, index=x.index, columns=x.columns)


def cci(close: Panel, high: Panel, low: Panel, n: int = 14) -> Panel:
    """(TP - MA(TP, n)) / (0.015 * AVEDEV(TP, n)) with TP = (H + L + C) / 3; 0 when TP is flat."""
    tp = (high + low + close) / 3.0
    dev = _mean_abs_dev(tp, n)
    out = (tp - tp.rolling(n).mean()) / (0.015 * dev)
    return out.mask(dev.notna() & (dev <= 1e-12), 0.0)


def dmi(close: Panel, high: Panel, low: Panel, n: int = 14, m: int = 6) -> tuple[Panel, Panel, Panel, Panel]:
    """PDI, MDI (n-day sums of directional movement over true range, x100), ADX = MA(DX, m),
    ADXR = (ADX + REF(ADX, m)) / 2. Flat stretches (zero range) give 0 rather than NaN."""
    tr = _true_range(close, high, low).rolling(n).sum()
    up = high - high.shift(1)
    down = low.shift(1) - low
    plus = up.where((up > 0) & (up > down), 0.0).where(up.notna() & down.notna())
    minus = down.where((down > 0) & (down > up), 0.0).where(up.notna() & down.notna())
    pdi = _ratio(plus.rolling(n).sum() * 100.0, tr)
    mdi = _ratio(minus.rolling(n).sum() * 100.0, tr)
    dx = _ratio((mdi - pdi).abs() * 100.0, mdi + pdi)
    adx = dx.rolling(m).mean()
    return pdi, mdi, adx, (adx + adx.shift(m)) / 2.0


def donchian(high: Panel, low: Panel, n: int = 20) -> tuple[Panel, Panel, Panel]:
    """Highest high and lowest low of the last ``n`` days (today included), and their midpoint."""
    up, down = high.rolling(n).max(), low.rolling(n).min()
    return up, (up + down) / 2.0, down


def trix(close: Panel, n: int = 12, m: int = 20) -> tuple[Panel, Panel]:
    """TRIX = percent change of EMA(EMA(EMA(C, n), n), n); MATRIX = MA(TRIX, m)."""
    tr = ema(ema(ema(close, n), n), n)
    value = (tr / tr.shift(1) - 1.0) * 100.0
    return value, value.rolling(m).mean()


def atr(close: Panel, high: Panel, low: Panel, n: int = 14) -> Panel:
    """MA(true range, n); the first day (no previous close) is not a true range."""
    tr = _true_range(close, high, low)
    return tr.rolling(n).mean()


def rsi(close: Panel, n: int = 14) -> Panel:
    """SMA(max(dC, 0), n, 1) / SMA(|dC|, n, 1) * 100 (Wilder smoothing); 50 when the price is flat."""
    change = close - close.shift(1)
    gain, move = sma(change.clip(lower=0.0), n), sma(change.abs(), n)
    return (gain / move * 100.0).mask(move.notna() & (move <= 1e-12), 50.0)


def _ratio(num: Panel, den: Panel) -> Panel:
    """num / den, 0 where den is 0 (NaN stays NaN)."""
    return (num / den).mask(den.notna() & num.notna() & (den.abs() <= 1e-12), 0.0)


def indicator_features(
    prices: pd.DataFrame, config: FeatureConfig, idx: PanelIndex | None = None
) -> pd.DataFrame:
    """All indicators on adjusted OHLC, scale-free: levels as ``x / close - 1``, spreads as ``x / close``,
    oscillators on 0..100 scales divided by 100, CCI by 100. A new frame on ``prices``' index."""
    idx = idx if idx is not None else panel_index(prices)
    c, h, lo = (idx.to_panel(prices[f"adj_{k}"]) for k in ("close", "high", "low"))
    dif, dea, hist = macd(c, config.macd_fast, config.macd_slow, config.macd_signal)
    k, d, j = kdj(c, h, lo, config.kdj_n, config.kdj_m1, config.kdj_m2)
    b_up, b_mid, b_low = boll(c, config.boll_n, config.boll_k)
    pdi, mdi, adx, adxr = dmi(c, h, lo, config.dmi_n, config.dmi_m)
    d_up, d_mid, d_down = donchian(h, lo, config.donchian_n)
    tr, tr_ma = trix(c, config.trix_n, config.trix_m)
    panels = {
        "macd_dif": dif / c, "macd_dea": dea / c, "macd_hist": hist / c,
        "kdj_k": k / 100.0, "kdj_d": d / 100.0, "kdj_j": j / 100.0,
        "boll_up": b_up / c - 1.0, "boll_mid": b_mid / c - 1.0, "boll_low": b_low / c - 1.0,
        "cci": cci(c, h, lo, config.cci_n) / 100.0,
        "dmi_pdi": pdi / 100.0, "dmi_mdi": mdi / 100.0, "dmi_adx": adx / 100.0, "dmi_adxr": adxr / 100.0,
        "donchian_up": d_up / c - 1.0, "donchian_mid": d_mid / c - 1.0, "donchian_down": d_down / c - 1.0,
        "trix": tr, "trix_ma": tr_ma,
        "atr": atr(c, h, lo, config.atr_n) / c,
        "rsi": rsi(c, config.rsi_n) / 100.0,
    }  # fmt: skip
    return pd.DataFrame({name: idx.to_long(p) for name, p in panels.items()}, index=prices.index)
