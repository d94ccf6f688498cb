"""The demo market's engine: simulate every table once over the configured range (see :mod:`.demo`).

Pure numpy and pandas: a config in, canonical long frames out (no provenance, no I/O). All draws come
from ``numpy.random.default_rng(seed)`` in a fixed order with shapes that depend only on the number of
symbols and days, so a seed fixes every table to the byte, and two configs that differ only in
``signal_strength`` share every random draw.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stockml.columns import (
    ADJ_COLS,
    BAR_COLS,
    CALENDAR_COLS,
    INDEX_COLS,
    MACRO_COLS,
    SENTIMENT_COLS,
    STOCK_BASIC_COLS,
)

if TYPE_CHECKING:
    from stockml.sources.demo import DemoConfig

SECTOR_NAMES = ("Bank", "Tech", "Consumer", "Energy", "Health", "Industrial", "Materials", "Utilities")

# Volatility model: GARCH(1,1) on every factor (alpha + beta < 1: stationary), Student-t innovations
# with 4 df (finite variance, heavy tails that the +-10 % price limit truncates).
GARCH_ALPHA, GARCH_BETA, T_DF = 0.09, 0.89, 4
MARKET_VOL, SECTOR_VOL, IDIO_VOL = 0.011, 0.007, (0.012, 0.022)  # long-run daily sd
MARKET_DRIFT = 0.0003
SIGNAL_AR, SENTIMENT_NOISE = 0.9, 1.0  # latent z is AR(1) with unit variance; score = z + noise * N(0, 1)
LIMIT = 0.10  # main-board daily price limit
SUSPENSION_MEAN_DAYS = 4.0


@dataclass(frozen=True)
class DemoTables:
    """Every table of one simulated market, canonical columns, sorted by time then ts_code."""

    bars: pd.DataFrame
    adj_factor: pd.DataFrame
    index_daily: pd.DataFrame
    stock_basic: pd.DataFrame
    macro: pd.DataFrame
    sentiment: pd.DataFrame
    trade_cal: pd.DataFrame


def demo_symbols(n: int) -> list[str]:
    """``n`` synthetic codes, alternating 600000+k.SH and 000001+k.SZ, sorted."""
    return sorted(f"{600000 + i // 2:06d}.SH" if i % 2 == 0 else f"{1 + i // 2:06d}.SZ" for i in range(n))


def take_strings(values: list[str], idx: np.ndarray) -> pd.Series:
    """``values[idx]`` as a pandas string column, built by one take (fast for long frames)."""
    return pd.Series(values).iloc[idx].reset_index(drop=True)


def sector_names(n: int) -> list[str]:
    return [SECTOR_NAMES[k] if k < len(SECTOR_NAMES) else f"Sector{k + 1}" for k in range(n)]


def weekdays(start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    days = pd.bdate_range(start, end) if start <= end else pd.bdate_range(start, start)[:0]
    return _dates(days)


@functools.cache
def _date_unit() -> str:
    """The unit pandas gives a parsed tushare date, so demo and real tables concatenate cleanly."""
    return str(pd.to_datetime(pd.Series(["20000101"]), format="%Y%m%d").dt.unit)


def _dates(values: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return values.as_unit(_date_unit())


def simulate_market(cfg: DemoConfig) -> DemoTables:
    """Simulate the whole configured market: returns, prices, corporate actions, side tables."""
    rng = np.random.default_rng(cfg.seed)
    # One stream per component, so that e.g. the macro table does not depend on the universe size.
    r_ret, r_events, r_susp, r_bars, r_score, r_basic, r_macro = rng.spawn(7)
    days = weekdays(cfg.start, cfg.end)
    codes = demo_symbols(cfg.n_symbols)
    sector = np.arange(cfg.n_symbols) % cfg.n_sectors
    n_days, n_sym = len(days), cfg.n_symbols

    ret, sig, z = _returns(r_ret, n_days, sector, cfg.n_sectors, cfg.signal_strength)
    suspended = _suspensions(r_susp, n_days, n_sym, cfg.suspension_rate)
    price_factor, bonus = _events(r_events, days, n_sym)
    p0 = np.round(np.exp(r_bars.uniform(np.log(4.0), np.log(120.0), n_sym)), 2)
    pre, close, adj, share_mult = _price_path(ret, suspended, price_factor, bonus, p0)

    live = ~suspended
    t_idx, i_idx = np.nonzero(live)  # row-major: sorted by day, then symbol
    ohlcva = _ohlcva(r_bars, pre, close, sig, share_mult, p0)
    score = z + SENTIMENT_NOISE * r_score.standard_normal((n_days, n_sym))

    keys = {"ts_code": take_strings(codes, i_idx), "trade_date": days[t_idx]}
    bar_values = {name: arr[t_idx, i_idx] for name, arr in ohlcva.items()}
    bars = pd.DataFrame({**keys, **bar_values})[list(BAR_COLS)]
    adj_frame = pd.DataFrame({**keys, "adj_factor": adj[t_idx, i_idx]})[list(ADJ_COLS)]
    sentiment = pd.DataFrame({**keys, "score": np.round(score[t_idx, i_idx], 4)})[list(SENTIMENT_COLS)]
    return DemoTables(
        bars=bars,
        adj_factor=adj_frame,
        index_daily=_index(cfg.index_code, days, live, ohlcva),
        stock_basic=_stock_basic(r_basic, codes, sector, cfg.n_sectors, cfg.start),
        macro=_macro(r_macro, cfg.start, cfg.end),
        sentiment=sentiment,
        trade_cal=_calendar(cfg.start, cfg.end),
    )


def _garch(rng: np.random.Generator, n_days: int, long_run_sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardised Student-t shocks and their GARCH(1,1) conditional sd, both (T, K)."""
    eps = rng.standard_t(T_DF, (n_days, len(long_run_sd))) / np.sqrt(T_DF / (T_DF - 2))
    omega = long_run_sd**2 * (1 - GARCH_ALPHA - GARCH_BETA)
    var = np.empty_like(eps)
    var[0] = long_run_sd**2
    for t in range(1, n_days):  # loop over days, vector over series
        var[t] = omega + var[t - 1] * (GARCH_ALPHA * eps[t - 1] ** 2 + GARCH_BETA)
    return eps, np.sqrt(var)


def _returns(
    rng: np.random.Generator, n_days: int, sector: np.ndarray, n_sectors: int, strength: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Daily simple returns (T, N), their total conditional sd (T, N) and the latent signal z (T, N).

    r[t, i] = drift + b_i m[t] + g_i s[sector(i), t] + sd[t, i] * (eps[t, i] + strength * z[t-1, i])
    """
    n_sym = len(sector)
    beta = rng.uniform(0.7, 1.3, n_sym)
    gamma = rng.uniform(0.6, 1.2, n_sym)
    idio_sd = rng.uniform(*IDIO_VOL, n_sym)
    m_eps, m_sd = _garch(rng, n_days, np.array([MARKET_VOL]))
    s_eps, s_sd = _garch(rng, n_days, np.full(n_sectors, SECTOR_VOL))
    eps, sd = _garch(rng, n_days, idio_sd)
    # z: stationary AR(1) with unit variance, one extra row for the day before the first.
    innov = rng.standard_normal((n_days + 1, n_sym))
    z = np.empty_like(innov)
    z[0] = innov[0]
    for t in range(1, n_days + 1):
        z[t] = SIGNAL_AR * z[t - 1] + np.sqrt(1 - SIGNAL_AR**2) * innov[t]
    common = beta * (m_sd * m_eps) + gamma * (s_sd * s_eps)[:, sector]
    ret = MARKET_DRIFT + common + sd * (eps + strength * z[:-1])
    total_sd = np.sqrt((beta * m_sd) ** 2 + (gamma * s_sd[:, sector]) ** 2 + sd**2)
    return np.clip(ret, -LIMIT, LIMIT), total_sd, z[1:]


def _suspensions(rng: np.random.Generator, n_days: int, n_sym: int, rate: float) -> np.ndarray:
    """(T, N) bool: runs of suspended days, about ``rate`` of all symbol-days."""
    p_start = rate / SUSPENSION_MEAN_DAYS / max(1e-12, 1 - rate)
    starts = rng.random((n_days, n_sym)) < p_start
    lengths = rng.geometric(1 / SUSPENSION_MEAN_DAYS, (n_days, n_sym))
    day = np.arange(n_days)[:, None]
    until = np.maximum.accumulate(np.where(starts, day + lengths, 0), axis=0)
    return until > day


def _events(rng: np.random.Generator, days: pd.DatetimeIndex, n_sym: int) -> tuple[np.ndarray, np.ndarray]:
    """Ex-dividend days: (T, N) price factors (1 - cash yield) / bonus ratio, and bonus ratios.

    Each symbol-year: a cash dividend with probability 0.75 (yield 0.3-3.5 %), bonus shares with
    probability 0.08 (ratio 1.2-2.0), ex-date a random trading day from mid-May to July.
    """
    factor, bonus = np.ones((len(days), n_sym)), np.ones((len(days), n_sym))
    for year in range(days[0].year, days[-1].year + 1) if len(days) else ():
        has_div = rng.random(n_sym) < 0.75
        cash_yield = rng.uniform(0.003, 0.035, n_sym)
        has_bonus = rng.random(n_sym) < 0.08
        ratio = rng.choice(np.array([1.2, 1.3, 1.5, 2.0]), n_sym)
        pick = rng.random(n_sym)
        window = np.flatnonzero((days >= pd.Timestamp(year, 5, 15)) & (days <= pd.Timestamp(year, 7, 31)))
        if len(window) == 0:
            continue
        row = window[(pick * len(window)).astype(int)]
        cols = np.arange(n_sym)
        bonus[row, cols] = np.where(has_bonus, ratio, 1.0)
        factor[row, cols] = np.where(has_div, 1 - cash_yield, 1.0) / bonus[row, cols]
    return factor, bonus


def _price_path(
    ret: np.ndarray, suspended: np.ndarray, price_factor: np.ndarray, bonus: np.ndarray, p0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw pre_close, close, adj_factor and share-count multiplier, (T, N), NaN on suspended days.

    Prices are rounded to the fen every day and held to the +-10 % limit of the rounded pre_close.
    An ex-date moves pre_close to the adjusted previous close and steps adj_factor by
    prev_close / pre_close, as tushare does; a suspended ex-date takes effect on resumption.
    """
    n_days, n_sym = ret.shape
    pre, close, adj, shares = (np.full((n_days, n_sym), np.nan) for _ in range(4))
    last, factor, share_mult = p0.copy(), np.ones(n_sym), np.ones(n_sym)
    pending, pending_bonus = np.ones(n_sym), np.ones(n_sym)
    for t in range(n_days):
        pending = pending * price_factor[t]
        pending_bonus = pending_bonus * bonus[t]
        live = ~suspended[t]
        p = np.where(pending != 1.0, np.maximum(np.round(last * pending, 2), 0.01), last)
        c = np.clip(np.round(p * (1 + ret[t]), 2), np.round(p * (1 - LIMIT), 2), np.round(p * (1 + LIMIT), 2))
        c = np.maximum(c, 0.01)
        factor = np.where(live, factor * (last / p), factor)
        share_mult = np.where(live, share_mult * pending_bonus, share_mult)
        pre[t, live], close[t, live] = p[live], c[live]
        adj[t, live], shares[t, live] = factor[live], share_mult[live]
        last = np.where(live, c, last)
        pending = np.where(live, 1.0, pending)
        pending_bonus = np.where(live, 1.0, pending_bonus)
    return pre, close, adj, shares


def _ohlcva(
    rng: np.random.Generator,
    pre: np.ndarray,
    close: np.ndarray,
    sd: np.ndarray,
    share_mult: np.ndarray,
    p0: np.ndarray,
) -> dict[str, np.ndarray]:
    """Open/high/low inside the limits around (pre_close, close); volume rises with |return|."""
    shape = pre.shape
    up, dn = np.round(pre * (1 + LIMIT), 2), np.maximum(np.round(pre * (1 - LIMIT), 2), 0.01)
    ret = close / pre - 1
    gap = 0.3 * ret + 0.35 * sd * rng.standard_normal(shape)
    open_ = np.clip(np.round(pre * (1 + gap), 2), dn, up)
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = np.clip(np.round(top * (1 + 0.5 * sd * np.abs(rng.standard_normal(shape))), 2), top, up)
    low = np.clip(np.round(bottom * (1 - 0.5 * sd * np.abs(rng.standard_normal(shape))), 2), dn, bottom)
    n_sym = shape[1]
    shares0 = np.exp(rng.uniform(np.log(3e9), np.log(3e11), n_sym)) / p0
    turnover = np.exp(rng.uniform(np.log(0.004), np.log(0.03), n_sym))
    activity = np.exp(0.3 * rng.standard_normal(shape) + 0.6 * (np.abs(ret) / sd - 0.8))
    vol = np.round(shares0 * share_mult * turnover * activity / 100, 2)  # lots
    vwap = (open_ + high + low + close) / 4
    return {
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "pre_close": pre,
        "change": np.round(close - pre, 2),
        "pct_chg": np.round((close / pre - 1) * 100, 4),
        "vol": vol,
        "amount": np.round(vol * vwap / 10, 3),  # lots * 100 shares * price / 1000
    }


def _index(code: str, days: pd.DatetimeIndex, live: np.ndarray, bars: dict[str, np.ndarray]) -> pd.DataFrame:
    """Equal-weighted index of the traded demo symbols, base 1000 the day before the first."""
    n_live = np.maximum(live.sum(axis=1), 1)

    def mean_move(col: str) -> np.ndarray:
        return np.nansum(bars[col] / bars["pre_close"] - 1, axis=1) / n_live

    close = np.round(1000.0 * np.cumprod(1 + mean_move("close")), 4)
    pre = np.concatenate([[1000.0], close[:-1]])
    open_ = np.round(pre * (1 + mean_move("open")), 4)
    high = np.maximum(np.round(pre * (1 + mean_move("high")), 4), np.maximum(open_, close))
    low = np.minimum(np.round(pre * (1 + mean_move("low")), 4), np.minimum(open_, close))
    frame = pd.DataFrame(
        {
            "ts_code": np.full(len(days), code, dtype=object),
            "trade_date": days,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "pre_close": pre,
            "pct_chg": np.round((close / pre - 1) * 100, 4),
            "vol": np.round(np.nansum(bars["vol"], axis=1), 2),
            "amount": np.round(np.nansum(bars["amount"], axis=1), 3),
        }
    )
    return frame[list(INDEX_COLS)]


def _stock_basic(
    rng: np.random.Generator, codes: list[str], sector: np.ndarray, n_sectors: int, start: dt.date
) -> pd.DataFrame:
    """One row per symbol; every symbol listed at least a year before ``start``, none delisted."""
    first = pd.Timestamp(1995, 1, 1)
    span = max(1, (pd.Timestamp(start) - pd.DateOffset(years=1) - first).days)
    list_date = first + pd.to_timedelta(rng.integers(0, span, len(codes)), unit="D")
    frame = pd.DataFrame(
        {
            "ts_code": codes,
            "name": [f"Demo {c[:6]}" for c in codes],
            "industry": np.asarray(sector_names(n_sectors), dtype=object)[sector],
            "list_date": _dates(list_date),
            "delist_date": pd.Series(pd.NaT, index=range(len(codes)), dtype=_dates(list_date).dtype),
        }
    )
    return frame[list(STOCK_BASIC_COLS)]


# series -> (mean, AR(1) coefficient, innovation sd, decimals); all pure noise for the market.
_MACRO_SERIES = {
    "cpi_mom": (0.2, 0.3, 0.3, 1),
    "m2_yoy": (9.0, 0.95, 0.4, 1),
    "pmi": (50.0, 0.8, 1.0, 1),
    "ppi_mom": (0.0, 0.5, 0.5, 1),
}


def _macro(rng: np.random.Generator, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Monthly series, one row per (series, month end) inside the range, sorted by period then series."""
    months = _dates(pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="ME"))
    parts = []
    for series, (mean, ar, sd, decimals) in _MACRO_SERIES.items():
        innov = rng.standard_normal(len(months)) * sd
        dev = np.zeros(len(months))
        for k in range(len(months)):  # a few dozen months
            dev[k] = (ar * dev[k - 1] if k else 0.0) + innov[k]
        values = np.round(mean + dev, decimals)
        parts.append(pd.DataFrame({"series": series, "period_end": months, "value": values}))
    frame = pd.concat(parts, ignore_index=True).sort_values(["period_end", "series"], kind="stable")
    frame = frame.assign(table="demo_macro", freq="M").reset_index(drop=True)
    return frame[list(MACRO_COLS)]


def _calendar(start: dt.date, end: dt.date) -> pd.DataFrame:
    """SSE calendar, every calendar day of the range: weekdays open, weekends closed (no holidays)."""
    cal = _dates(pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D"))
    frame = pd.DataFrame(
        {"exchange": "SSE", "cal_date": cal, "is_open": (cal.day_of_week < 5).astype(np.int64)}
    )
    return frame[list(CALENDAR_COLS)]
