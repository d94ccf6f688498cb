"""Top-k with drop-n (Qlib's TopkDropout), position weights and a VaR budget, for one day's (N,) arrays.

Forecasts are cumulative log returns; VaR and widths are taken on simple returns ``exp(q) - 1``.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from stockml.backtest.config import StrategyConfig


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Indices of the names with a score, best first; ties keep the universe's order (deterministic)."""
    valid = np.flatnonzero(np.isfinite(scores))
    return valid[np.argsort(-scores[valid], kind="stable")]


def select_names(
    held: np.ndarray, scores: np.ndarray, top_k: int, drop_n: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(names to sell, names to buy best first) given ``held`` (N,) bool and today's ``scores``.

    Held names outside the top ``top_k`` (a held name without a score is outside) are sold, worst first,
    at most ``drop_n`` of them; the buy list is the top-``top_k`` names not held. The caller buys as many
    of them as the book has free slots after the sells that went through.
    """
    order = rank_order(scores)
    in_top = np.zeros(len(scores), dtype=bool)
    in_top[order[:top_k]] = True
    leaving = np.flatnonzero(held & ~in_top)
    worst_first = leaving[np.argsort(np.nan_to_num(scores[leaving], nan=-np.inf), kind="stable")]
    sell = np.zeros(len(scores), dtype=bool)
    sell[worst_first if drop_n is None else worst_first[:drop_n]] = True
    buy = order[:top_k][~held[order[:top_k]]]
    return sell, buy


def position_weights(members: np.ndarray, width: np.ndarray, top_k: int, weighting: str) -> np.ndarray:
    """(N,) target weights of the ``members`` of the book, each of the ``top_k`` slots worth 1 / top_k.

    ``equal``: 1 / top_k each. ``inverse_vol``: the members' share ``count / top_k`` split in proportion to
    1 / interval width (the forecast's volatility); a member without a usable width gets the members'
    mean inverse width.
    """
    weights = np.zeros(len(members))
    count = int(members.sum())
    if count == 0:
        return weights
    if weighting == "equal":
        weights[members] = 1.0 / top_k
        return weights
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(width[members] > 0, 1.0 / width[members], np.nan)
    fill = np.nanmean(inverse) if np.isfinite(inverse).any() else 1.0
    inverse = np.where(np.isfinite(inverse), inverse, fill)
    weights[members] = inverse / inverse.sum() * count / top_k
    return weights


def portfolio_var(
    weights: np.ndarray,
    lower: np.ndarray,
    median: np.ndarray,
    upper: np.ndarray,
    cfg: StrategyConfig,
) -> float:
    """Predicted one-day VaR at level ``1 - cfg.lower`` of a book with ``weights`` (cash earns 0), as a
    positive fraction of its value (0 when the book is predicted not to lose at that level).

    ``sum``: the names' VaRs added, ``-sum(w * r_lower)`` (comonotonic: every name at its own lower
    quantile together; conservative). ``independent``: a normal book with independent names, each with
    mean ``r_median`` and sd ``(r_upper - r_lower) / (z_upper - z_lower)``. ``r = exp(q) - 1``. A member
    without a forecast gets the other members' mean.
    """
    held = weights > 0
    if not held.any():
        return 0.0
    w = weights[held]
    r_lo, r_md, r_hi = (_filled(np.expm1(q[held])) for q in (lower, median, upper))
    if cfg.var_method == "sum":
        return max(0.0, float(-(w * r_lo).sum()))
    z_lo, z_hi = NormalDist().inv_cdf(cfg.lower), NormalDist().inv_cdf(cfg.upper)
    sd = (r_hi - r_lo) / (z_hi - z_lo)
    mean, spread = float((w * r_md).sum()), float(np.sqrt(((w * sd) ** 2).sum()))
    return max(0.0, -(mean + z_lo * spread))


def _filled(values: np.ndarray) -> np.ndarray:
    known = np.isfinite(values)
    if known.all():
        return values
    return np.where(known, values, values[known].mean() if known.any() else 0.0)


def var_scale(var: float, budget: float | None) -> float:
    """Factor on every weight that brings the book's VaR within ``budget``; both VaRs are homogeneous
    of degree one in the weights, so the scaled book's VaR is ``factor * var``."""
    if budget is None or var <= budget:
        return 1.0
    return budget / var
