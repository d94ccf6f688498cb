"""Online interval calibration: adaptive conformal inference on the spread of each quantile level.

A forecast's quantile at level tau is moved away from (or towards) its median by a log-scale factor:
``q'_tau = m + (q_tau - m) * exp(phi_tau)``, with ``m`` the median forecast. After each date's outcomes
are known, ``phi`` is updated from the share of outcomes that fell below the calibrated quantile (Gibbs
and Candes, 2021, with the offset on the spread rather than on the level):

``phi_tau <- phi_tau + gamma * (below - tau) / tau`` for tau < 0.5 (too many below: widen), and
``phi_tau <- phi_tau + gamma * (tau - below) / (1 - tau)`` for tau > 0.5 (too few below: widen),

``below`` being the share of that date's symbols whose outcome fell below ``q'_tau``; dividing by the tail
mass lets a 5% level adapt as fast as a 25% one. Causal by construction:
the forecast made at as-of date ``d_i`` for horizon h uses updates from as-of dates ``d_j``, ``j <= i - h``
only, whose h-day outcomes are known by ``d_i`` (the dates are trading days, so ``i - h`` dates back is at
least h trading days back). The factor is scale-free, so it works on raw log-return quantiles of every
symbol alike, and the median is never moved. Quantiles are sorted after the adjustment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockml.columns import quantile_column
from stockml.models.base import median_index

SUFFIX = ".aci"  # the report name of a model's calibrated forecasts: "lstm.aci"


def aci_spread(preds: pd.DataFrame, quantiles: tuple[float, ...], gamma: float) -> pd.DataFrame:
    """``preds`` (one row per ts_code, as-of ``date`` and ``horizon``, quantile columns and ``y_true``)
    with online-calibrated quantile columns; rows and other columns unchanged. ``phi`` starts at 0 at the
    first as-of date of each horizon and runs through all dates in order."""
    out = preds.copy()
    cols = [quantile_column(q) for q in quantiles]
    mid = median_index(quantiles)
    levels = np.asarray(quantiles)
    # widening direction of the error (below - tau), over the level's tail mass so every level adapts alike
    side = np.where(levels < 0.5, 1.0, -1.0) / np.minimum(levels, 1.0 - levels)
    for h, unsorted in preds.groupby("horizon", sort=True):
        block = unsorted.sort_values("date", kind="stable")  # each date's rows one contiguous slice
        dates, starts = np.unique(block["date"].to_numpy(), return_index=True)
        bounds = [*starts, len(block)]
        q = block[cols].to_numpy(np.float64)  # (n, Q)
        y = block["y_true"].to_numpy(np.float64)
        median = q[:, mid : mid + 1]
        adjusted = np.empty_like(q)
        phi = np.zeros(len(levels))
        lag = int(h)
        for i in range(len(dates)):
            j = i - lag
            if j >= 0:  # the outcomes of date j are known now: update with the calibrated forecasts then
                known = slice(bounds[j], bounds[j + 1])
                finite = np.isfinite(y[known])
                if finite.any():
                    below = (y[known][finite, None] < adjusted[known][finite]).mean(axis=0)  # (Q,)
                    phi += gamma * side * (below - levels)
                    phi[mid] = 0.0
            now = slice(bounds[i], bounds[i + 1])
            adjusted[now] = np.sort(median[now] + (q[now] - median[now]) * np.exp(phi), axis=1)
        out.loc[block.index, cols] = adjusted
    return out
