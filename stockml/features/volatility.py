"""Causal volatility estimates of daily log returns (pure numpy/pandas; nothing here reads the future).

``sigma_t`` is known at the close of day t: it uses the returns of days ``<= t`` only. It is the scale of
the volatility-standardised targets (``z = y_{t,h} / (sigma_t * sqrt(h))``), of the ``ewma_vol`` baseline
and a feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RISKMETRICS_LAMBDA = 0.94
SIGMA_FLOOR = 1e-4  # a daily sd below 0.01% is a data artefact (a long suspension), never a forecast


def ewma_volatility(
    returns: pd.DataFrame, lam: float = RISKMETRICS_LAMBDA, seed_days: int = 20, floor: float = SIGMA_FLOOR
) -> pd.DataFrame:
    """RiskMetrics EWMA sd of a (dates x symbols) panel of daily log returns, causal.

    ``var_t = lam * var_{t-1} + (1 - lam) * r_t**2``, seeded with the mean square of each symbol's first
    ``seed_days`` returns (so ``sigma_t`` is NaN before a symbol's ``seed_days``-th return, and day t's value
    uses returns up to and including t). Missing returns (suspensions) leave the variance unchanged.
    """
    if not 0.0 < lam < 1.0:
        raise ValueError(f"lambda must lie in (0, 1), got {lam}")
    r = returns.to_numpy(np.float64)
    if len(r) == 0:
        return returns.astype(np.float64)
    finite = np.isfinite(r)
    seen = np.cumsum(finite, axis=0)  # (T, S) returns seen up to and including each day
    starts = seen[-1] >= seed_days
    start = np.where(starts, np.argmax(seen >= seed_days, axis=0), len(r))  # (S,) the seed_days-th return
    seed = np.where(finite & (seen <= seed_days), r, 0.0)
    var = (seed**2).sum(axis=0) / seed_days  # (S,) mean square of each symbol's first seed_days returns
    out = np.full(r.shape, np.nan)
    for t in range(len(r)):  # one step for every symbol at once
        update = finite[t] & (t > start)
        var = np.where(update, lam * var + (1.0 - lam) * np.where(update, r[t], 0.0) ** 2, var)
        out[t] = np.where(t >= start, var, np.nan)
    return pd.DataFrame(np.sqrt(np.maximum(out, floor**2)), index=returns.index, columns=returns.columns)
