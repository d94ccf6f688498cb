"""Tomorrow's target book from today's forecast: the backtest's strategy applied to one day (pure).

The same rules as :mod:`stockml.backtest.simulate` decide which names to hold (top-k by score, at most
drop-n held names replaced, equal or inverse-volatility weights, the VaR budget), starting from the
previous target book. What the session will allow (T+1, price limits, suspensions, lots) is not known
until it trades, so the target is in weights, not shares: research output, not an order.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from stockml.backtest.config import StrategyConfig
from stockml.backtest.signals import Forecast, model_scores, random_scores, tie_broken
from stockml.backtest.strategy import portfolio_var, position_weights, select_names, var_scale
from stockml.columns import TS_CODE, quantile_column

COLUMNS = (TS_CODE, "weight", "score", "rank", "reason")


def _one_day(forecast: pd.DataFrame, codes: np.ndarray, cfg: StrategyConfig) -> Forecast:
    """(1, N) horizon-1 quantiles of ``codes`` (NaN for a name without a forecast)."""
    h1 = forecast[forecast["horizon"] == 1].drop_duplicates(TS_CODE, keep="last").set_index(TS_CODE)
    columns = [quantile_column(q) for q in (cfg.lower, 0.5, cfg.upper)]
    lower, median, upper = (h1[c].reindex(codes).to_numpy(np.float64)[None, :] for c in columns)
    return Forecast(lower=lower, median=median, upper=upper)


def target_portfolio(
    forecast: pd.DataFrame, previous: pd.DataFrame | None, cfg: StrategyConfig, as_of: dt.date
) -> pd.DataFrame:
    """One row per name the book holds or sells next session: ``ts_code``, ``weight`` (of the book; 0 =
    sell), ``score`` (the ranking score: predicted median, or median per interval width), ``rank`` (1 =
    best of the names forecast) and ``reason``. ``forecast``: one as-of date's forecast (``ts_code``,
    ``horizon``, quantile columns; horizon 1 is used); ``previous``: the last target book (``ts_code``,
    ``weight``), or None to start from cash. Equal scores are ordered by numbers seeded with ``as_of``,
    as in the backtest, and the reason says so when the forecast ranks nothing."""
    before = (
        previous.loc[previous["weight"] > 0, TS_CODE] if previous is not None else pd.Series([], dtype=str)
    )
    forecast_codes = forecast.loc[forecast["horizon"] == 1, TS_CODE]
    codes = np.sort(pd.concat([forecast_codes, before]).unique())  # a held name may lack a forecast
    held = np.isin(codes, before.to_numpy())
    panel = _one_day(forecast, codes, cfg)
    raw = model_scores(panel, cfg)[0]
    ranks = tie_broken(raw[None, :], random_scores((1, len(codes)), as_of.toordinal()))[0]
    sell, buy = select_names(held, ranks, cfg.top_k, cfg.drop_n)
    kept = held & ~sell
    new = np.zeros_like(held)
    new[buy[: max(cfg.top_k - int(kept.sum()), 0)]] = True
    members = kept | new
    weights = position_weights(members, panel.width[0], cfg.top_k, cfg.weighting)
    if cfg.var_budget is not None:
        var = portfolio_var(weights, panel.lower[0], panel.median[0], panel.upper[0], cfg)
        weights = weights * var_scale(var, cfg.var_budget)
    n_ranked = int(np.isfinite(ranks).sum())
    order = len(codes) - ranks  # 1 = best (missing scores rank below every real one); NaN: no forecast
    flat = bool(np.nanstd(raw) == 0) if n_ranked else True
    reasons = _reasons(members, new, sell, held, order, cfg.top_k, n_ranked, flat)
    rows = pd.DataFrame({TS_CODE: codes, "weight": weights, "score": raw, "rank": order, "reason": reasons})
    shown = members | sell
    return rows[shown].sort_values(["weight", "rank"], ascending=[False, True]).reset_index(drop=True)


def _reasons(
    members: np.ndarray,
    new: np.ndarray,
    sell: np.ndarray,
    held: np.ndarray,
    order: np.ndarray,
    top_k: int,
    n: int,
    flat: bool,
) -> list[str]:
    tail = "; the forecast ranks nothing (equal scores): a random pick" if flat else ""
    out = []
    for i in range(len(order)):
        place = f"rank {order[i]:.0f} of {n}" if np.isfinite(order[i]) else "no forecast today"
        if sell[i]:
            out.append(f"sell: {place}, outside the top {top_k}{tail}")
        elif new[i]:
            out.append(f"buy: {place}{tail}")
        elif members[i] and held[i]:
            inside = order[i] <= top_k
            out.append(
                f"hold: {place}" + ("" if inside else f", outside the top {top_k} (drop limit)") + tail
            )
        else:
            out.append("")
    return out
