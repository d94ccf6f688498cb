"""Test helpers for the feature pipeline: tiny seeded synthetic markets, and the real A-share sample read
the way a user's ingest reads it (``LocalSource`` -> the validation gate): the canonical frames
``build_feature_frame`` expects."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sample import require_sample

from stockml.sources.base import MarketData
from stockml.sources.local import LocalSource
from stockml.store.ingest import validate_batch

INDUSTRIES = ("银行", "白酒", "汽车")


def synthetic_market(
    n_symbols: int = 4,
    n_days: int = 120,
    seed: int = 0,
    *,
    start: str = "2021-01-04",
    suspend_prob: float = 0.03,
    macro: bool = True,
    sentiment: bool = True,
) -> MarketData:
    """A small market whose adjusted returns are known exactly.

    Raw closes drop on ex-dividend days (adj_factor rises), pre_close is ex-adjusted as tushare does,
    some days are suspended (no bar) and one symbol lists late, so raw close differences are wrong.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n_days)
    codes = [f"{600000 + i:06d}.SH" for i in range(n_symbols)]
    log_adj = np.log(rng.uniform(5, 50, n_symbols)) + np.cumsum(
        rng.normal(0, 0.02, (n_days, n_symbols)), axis=0
    )
    jumps = np.where(
        rng.random((n_days, n_symbols)) < 0.02, rng.uniform(0.01, 0.08, (n_days, n_symbols)), 0.0
    )
    factor = np.exp(np.cumsum(np.log1p(jumps), axis=0))
    keep = rng.random((n_days, n_symbols)) >= suspend_prob
    keep[:, -1] &= np.arange(n_days) >= n_days // 4  # a late listing
    day_i, sym_i = np.nonzero(keep)
    order = np.lexsort((day_i, sym_i))
    day_i, sym_i = day_i[order], sym_i[order]
    frame = pd.DataFrame(
        {
            "ts_code": np.asarray(codes, dtype=object)[sym_i],
            "trade_date": dates[day_i].astype("datetime64[ns]"),
            "_la": log_adj[day_i, sym_i],
            "adj_factor": factor[day_i, sym_i],
        }
    )
    prev_la = frame.groupby("ts_code")["_la"].shift(1)
    close = np.exp(frame["_la"]) / frame["adj_factor"]
    pre_close = np.exp(prev_la) / frame["adj_factor"]  # previous adjusted close in today's share terms
    first_pre = close / np.exp(rng.normal(0, 0.02, len(frame)))
    pre_close = pre_close.fillna(first_pre)
    noise = np.abs(rng.normal(0, 0.01, (3, len(frame))))
    open_ = pre_close * np.exp(rng.normal(0, 0.01, len(frame)))
    high = np.maximum(open_, close) * np.exp(noise[0])
    low = np.minimum(open_, close) * np.exp(-noise[1])
    vol = rng.lognormal(10, 0.5, len(frame))
    bars = pd.DataFrame(
        {
            "ts_code": frame["ts_code"].astype(str),
            "trade_date": frame["trade_date"],
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "pre_close": pre_close,
            "change": close - pre_close,
            "pct_chg": (close / pre_close - 1.0) * 100.0,
            "vol": vol,
            "amount": vol * close / 10.0,
        }
    )
    adj = frame[["ts_code", "trade_date", "adj_factor"]].assign(ts_code=lambda f: f["ts_code"].astype(str))
    market = np.cumsum(rng.normal(0, 0.01, n_days))
    index_daily = pd.DataFrame(
        {
            "ts_code": "000300.SH",
            "trade_date": dates.astype("datetime64[ns]"),
            "close": 4000 * np.exp(market),
            "pct_chg": np.r_[0.0, np.expm1(np.diff(market))] * 100.0,
        }
    )
    stock_basic = pd.DataFrame(
        {
            "ts_code": codes,
            "name": [f"S{i}" for i in range(n_symbols)],
            "industry": [INDUSTRIES[i % len(INDUSTRIES)] if i != 1 else None for i in range(n_symbols)],
        }
    )
    return MarketData(
        bars=bars,
        adj_factor=adj,
        index_daily=index_daily,
        stock_basic=stock_basic,
        macro=synthetic_macro(dates, rng) if macro else None,
        sentiment=synthetic_sentiment(bars, rng) if sentiment else None,
    )


def synthetic_macro(dates: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    """A monthly CPI-like series (Chinese name) and a daily rate that stops two thirds of the way in."""
    months = pd.date_range(dates[0] - pd.DateOffset(years=2), dates[-1], freq="ME")
    cpi = pd.DataFrame(
        {"table": "cn_cpi_ppi_mom_monthly", "series": "CPI:环比", "freq": "M", "period_end": months}
    ).assign(value=rng.normal(0.1, 0.3, len(months)).round(2))
    days = pd.bdate_range(dates[0] - pd.DateOffset(months=3), dates[len(dates) * 2 // 3])
    rate = pd.DataFrame({"table": "shibor", "series": "on", "freq": "D", "period_end": days}).assign(
        value=2.0 + np.cumsum(rng.normal(0, 0.02, len(days)))
    )
    out = pd.concat([cpi, rate], ignore_index=True)
    return out.assign(period_end=out["period_end"].astype("datetime64[ns]"))


def synthetic_sentiment(bars: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    rows = bars.loc[rng.random(len(bars)) < 0.8, ["ts_code", "trade_date"]]
    return rows.assign(score=rng.normal(0, 1, len(rows))).reset_index(drop=True)


def load_ashare_sample(root: Path | None = None) -> MarketData:
    """The sample's CSVs (default: the shared sample, else the test skips) as validated canonical frames
    (bars, index_daily, stock_basic, macro)."""
    root = root or require_sample()
    data = LocalSource(root).fetch(dt.date(2000, 1, 1), dt.date.today())
    with tempfile.TemporaryDirectory() as reports:  # written only for a failing batch
        return validate_batch(data, dt.date.today(), Path(reports), "ashare_sample")
