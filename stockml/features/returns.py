"""Adjusted prices, returns, realised volatility, amplitude, volume and amount z-scores, turnover.

Returns never come from raw close differences: on ex-dividend days ``close`` jumps while the holder's
wealth does not. Each row's one-day log return comes from the first source that has it:
``adj_factor`` (this row and the symbol's previous one), then ``pct_chg``, then ``close / pre_close``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockml.columns import TRADE_DATE, TS_CODE
from stockml.features.config import FeatureConfig
from stockml.features.panel import PanelIndex, panel_index, sort_long

RET_1D = "_ret_1d"  # one-day log return of the adjusted close (intermediate)
LOG_LEVEL = "_log_adj_close"  # cumulative log return since the symbol's first row (intermediate)


def adjust_prices(bars: pd.DataFrame, adj_factor: pd.DataFrame | None = None) -> pd.DataFrame:
    """Bars sorted by (ts_code, trade_date) plus one-day log returns and adjusted OHLC.

    Adjusted prices are anchored at each symbol's first row (``adj_close == close`` there), so only
    the past is used; indicators expressed relative to close do not depend on the anchor. Adds
    ``_ret_1d``, ``_log_adj_close``, ``adj_open/high/low/close`` and ``_ret_source``.
    Raises ``ValueError`` if a row after a symbol's first has no usable return.
    """
    frame = sort_long(bars)
    idx = panel_index(frame)
    first = idx.pos == 0
    close = frame["close"].to_numpy(np.float64)
    candidates: list[tuple[str, np.ndarray]] = []
    if adj_factor is not None and len(adj_factor):
        factors = adj_factor[[TS_CODE, TRADE_DATE, "adj_factor"]].drop_duplicates([TS_CODE, TRADE_DATE])
        factor = frame[[TS_CODE, TRADE_DATE]].merge(factors, on=[TS_CODE, TRADE_DATE], how="left")[
            "adj_factor"
        ]
        log_adj = np.log(close * factor.to_numpy(np.float64))
        prev = np.r_[np.nan, log_adj[:-1]]
        candidates.append(("adj_factor", np.where(first, np.nan, log_adj - prev)))
    for name in ("pct_chg", "pre_close"):
        if name in frame.columns:
            col = frame[name].to_numpy(np.float64)
            ret = np.log1p(col / 100.0) if name == "pct_chg" else np.log(close / col)
            candidates.append((name, ret))
    ret = np.full(len(frame), np.nan)
    source = np.full(len(frame), "none", dtype=object)
    for name, values in candidates:
        take = np.isnan(ret) & np.isfinite(values)
        ret[take] = values[take]
        source[take] = name
    missing = np.isnan(ret) & ~first
    if missing.any():
        rows = frame.loc[missing, [TS_CODE, TRADE_DATE]].head(5).to_dict("records")
        raise ValueError(
            f"{int(missing.sum())} bar(s) have no adj_factor, pct_chg or pre_close to take a return "
            f"from (raw close differences are wrong on ex-dividend days); first: {rows}"
        )
    # Cumulative log return since the first row; the first row's own return is not part of the level.
    # Summed per symbol in the panel, so one symbol's rounding never depends on another's rows.
    step = np.where(first, 0.0, ret)
    level = idx.to_long(np.cumsum(np.nan_to_num(idx.to_panel(step).to_numpy()), axis=0))
    adj_close = close[first][idx.sym] * np.exp(level)
    ratio = adj_close / close
    return frame.assign(
        **{
            RET_1D: ret,
            LOG_LEVEL: level,
            "adj_open": frame["open"].to_numpy(np.float64) * ratio,
            "adj_high": frame["high"].to_numpy(np.float64) * ratio,
            "adj_low": frame["low"].to_numpy(np.float64) * ratio,
            "adj_close": adj_close,
            "_ret_source": source,
        }
    )


def return_features(
    prices: pd.DataFrame, config: FeatureConfig, idx: PanelIndex | None = None
) -> pd.DataFrame:
    """Log returns at ``config.return_lags``, realised volatility, amplitude, z-scores, turnover.

    ``prices`` is the output of :func:`adjust_prices`. Returns a new frame on the same index.
    """
    idx = idx if idx is not None else panel_index(prices)
    level = idx.to_panel(prices[LOG_LEVEL])
    ret = idx.to_panel(prices[RET_1D])
    out: dict[str, np.ndarray] = {}
    for lag in config.return_lags:
        # log(adj_close_t / adj_close_{t-lag}); the first row's return is defined by pct_chg/pre_close.
        values = level - level.shift(lag) if lag > 1 else ret
        out[f"logret_{lag}"] = idx.to_long(values)
    for window in config.vol_windows:
        out[f"rv_{window}"] = idx.to_long(ret.rolling(window).std())
    out["amplitude"] = np.log(prices["high"].to_numpy(np.float64) / prices["low"].to_numpy(np.float64))
    for name in ("vol", "amount"):
        activity = idx.to_panel(np.log1p(prices[name].to_numpy(np.float64)))
        out[f"{name}_z"] = idx.to_long(rolling_zscore(activity, config.zscore_window))
    if "turnover_rate" in prices.columns:
        out["turnover"] = prices["turnover_rate"].to_numpy(np.float64)
    return pd.DataFrame(out, index=prices.index)


def rolling_zscore(panel: pd.DataFrame, window: int) -> pd.DataFrame:
    """(x - rolling mean) / rolling std over the last ``window`` rows including today; 0 if flat."""
    roll = panel.rolling(window)
    mean, std = roll.mean(), roll.std()
    z = (panel - mean) / std
    return z.mask((std <= 1e-12) & mean.notna(), 0.0)
