"""Metrics of a long prediction frame, per horizon, and skill against the random walk.

Prediction frame (one row per symbol, as-of date and horizon)
-------------------------------------------------------------
``ts_code``     str            symbol
``date``        datetime64     as-of date ``t`` (the forecast is made after the close of ``t``)
``horizon``     int            ``h`` in 1..H
``y_true``      float          realised log return from close ``t`` to close ``t + h``; NaN while unrealised
``last_close``  float          close at ``t``, to rebuild prices: ``last_close * exp(r)``
``q<level>``    float          predicted log-return quantiles, e.g. ``q0.05`` ... ``q0.95``; the level is
                               parsed from the name; some levels must lie below 0.5 and some above

Rows with a NaN in ``y_true``, ``last_close`` or any used quantile column are dropped first; ``"n"`` counts
the rows left, and every metric of a horizon is computed on those same rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockml.columns import TS_CODE
from stockml.evaluation import metrics as m

DATE = "date"
HORIZON = "horizon"
Y_TRUE = "y_true"
LAST_CLOSE = "last_close"
INTERVALS = (0.5, 0.8, 0.9)
MIN_GROUP = 5  # rows a date (or a symbol) needs to yield an IC

_QUANTILE_COL = re.compile(r"^q(\d*\.\d+)$")


def quantile_columns(frame: pd.DataFrame, quantiles: Sequence[float] | None = None) -> dict[float, str]:
    """Level -> column, sorted by level: every ``q<level>`` column, or those of ``quantiles`` (all needed)."""
    found = {float(mt.group(1)): c for c in frame.columns if (mt := _QUANTILE_COL.match(str(c)))}
    if quantiles is None:
        return dict(sorted(found.items()))
    chosen: dict[float, str] = {}
    for level in sorted(quantiles):
        match = [c for lv, c in found.items() if math.isclose(lv, level, abs_tol=1e-9)]
        if not match:
            raise ValueError(f"no quantile column for level {level}; have {sorted(found)}")
        chosen[float(level)] = match[0]
    return chosen


# --- information coefficients ----------------------------------------------------------------------


@dataclass(frozen=True)
class InformationCoefficients:
    """Mean Pearson (``ic``) and Spearman (``rank_ic``) correlation over groups, and their mean/std ratio.

    ``by`` is the grouping used: ``"date"`` (cross-sectional) or ``"ts_code"`` (per-symbol time series);
    ``n_groups`` counts the groups with a defined IC.
    """

    ic: float
    rank_ic: float
    icir: float
    rank_icir: float
    n_groups: int
    by: str


def _group_ranks(codes: np.ndarray, values: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (ties share their mean rank) of ``values`` within each group code, and whether each
    group is constant (its smallest value equals its largest)."""
    if codes.size == 0:
        return np.empty(0), np.ones(n_groups, dtype=bool)
    _, dense = np.unique(values, return_inverse=True)  # equal values share a dense rank
    key = codes.astype(np.int64) * (int(dense.max(initial=0)) + 1) + dense  # (group, value) as one int
    order = np.argsort(key)  # one integer sort; np.lexsort((values, codes)) is slower
    c, k = codes[order], key[order]
    pos = np.arange(c.size)
    new_group = np.r_[True, c[1:] != c[:-1]]
    new_run = np.r_[True, k[1:] != k[:-1]]
    ordinal = pos - np.maximum.accumulate(np.where(new_group, pos, 0)) + 1.0
    run = np.cumsum(new_run) - 1
    ranks = np.empty(c.size)
    ranks[order] = (np.bincount(run, ordinal) / np.bincount(run))[run]
    last = np.r_[new_group[1:], True]
    constant = np.ones(n_groups, dtype=bool)
    constant[c[new_group]] = k[new_group] == k[last]
    return ranks, constant


def _group_pearson(codes: np.ndarray, x: np.ndarray, y: np.ndarray, n_groups: int) -> np.ndarray:
    """Pearson correlation of ``x`` and ``y`` within each group code, ``(n_groups,)`` (before masking)."""
    size = np.bincount(codes, minlength=n_groups).astype(np.float64)
    xc = x - (np.bincount(codes, x, n_groups) / size)[codes]
    yc = y - (np.bincount(codes, y, n_groups) / size)[codes]
    sxy, sxx, syy = (np.bincount(codes, a * b, n_groups) for a, b in ((xc, yc), (xc, xc), (yc, yc)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return sxy / np.sqrt(sxx * syy)


def _mean_and_ir(ics: np.ndarray) -> tuple[float, float]:
    """Mean of the finite ICs and ``mean / std`` (sample std, ddof=1); NaN when undefined."""
    v = ics[np.isfinite(ics)]
    if v.size == 0:
        return math.nan, math.nan
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return mean, (mean / std if std > 0 else math.nan)


def information_coefficients(
    frame: pd.DataFrame, prediction: str, target: str = Y_TRUE, min_group: int = MIN_GROUP
) -> InformationCoefficients:
    """IC and Rank IC of ``prediction`` against ``target``, with ICIR (rows with a NaN in either are dropped).

    Cross-sectional (one IC per date, over the dates with at least ``min_group`` symbols) when at least
    half of the rows lie on such dates; otherwise per-symbol time series (one IC per symbol with at least
    ``min_group`` rows). The reported IC is the mean over groups and ICIR is ``mean / std`` of the
    per-group ICs. Groups where either side is constant give no IC (never a warning); with none left,
    every value is NaN. Vectorised with numpy (sort + bincount): pandas groupby transforms and ranks
    took three times longer.
    """
    rows = frame.dropna(subset=[prediction, target])
    date_codes, dates = pd.factorize(rows[DATE])
    wide = np.bincount(date_codes, minlength=len(dates))[date_codes] >= min_group
    by = DATE if wide.size and wide.mean() >= 0.5 else TS_CODE
    if by == DATE:
        rows = rows[wide]
    codes, uniques = pd.factorize(rows[by])
    n_groups = len(uniques)
    x = rows[prediction].to_numpy(dtype=np.float64)
    y = rows[target].to_numpy(dtype=np.float64)
    rx, const_x = _group_ranks(codes, x, n_groups)
    ry, const_y = _group_ranks(codes, y, n_groups)
    valid = (np.bincount(codes, minlength=n_groups) >= min_group) & ~const_x & ~const_y
    pearson = np.where(valid, _group_pearson(codes, x, y, n_groups), np.nan)
    spearman = np.where(valid, _group_pearson(codes, rx, ry, n_groups), np.nan)
    ic, icir = _mean_and_ir(pearson)
    rank_ic, rank_icir = _mean_and_ir(spearman)
    return InformationCoefficients(ic, rank_ic, icir, rank_icir, int(valid.sum()), by)


def _known(preds: pd.DataFrame, cols: Mapping[float, str]) -> pd.DataFrame:
    """The rows every metric is computed on: outcome, as-of close and every used quantile known."""
    return preds.dropna(subset=[Y_TRUE, LAST_CLOSE, *cols.values()])


# --- one horizon -----------------------------------------------------------------------------------


def metrics_for(preds: pd.DataFrame, quantiles: Sequence[float] | None = None) -> dict[str, float]:
    """Every metric of one horizon's predictions (see the module docstring for the frame).

    Keys: ``rmse``, ``mae``, ``mape`` (a fraction) on reconstructed prices, median vs realised;
    ``direction_accuracy``; ``brier_up`` and ``hit_rate_up`` of P(up) (:func:`stockml.evaluation.metrics.
    prob_up`) against the sign of the outcome (a forecast without a view scores 0.25 and 0.5); ``ic``,
    ``rank_ic``, ``icir``, ``rank_icir``; ``pinball`` (mean over levels) and ``pinball_q<level>`` per
    level; ``crps`` (2 x mean pinball); ``coverage_50/80/90`` and ``width_50/80/90`` of the central
    intervals; ``var95_breach_rate``, ``var99_breach_rate`` and Kupiec p-values ``kupiec_p_95``,
    ``kupiec_p_99``; ``cvar95_pred`` (mean predicted expected shortfall), ``cvar95_realised`` (mean
    ``y_true`` over VaR95 breaches, NaN if none); ``n`` (rows used).

    Quantiles not forecast are interpolated linearly between levels; beyond the outermost level a normal
    tail is assumed (:func:`stockml.evaluation.metrics.quantile_at`). With the default levels VaR99 (the
    0.01 quantile) and CVaR95 (the mean below the 0.05 quantile) come from that normal tail.
    ``cvar95_pred`` averages over all rows: for a calibrated model breaches are equally likely on every
    row, so the mean of ``y_true`` over breaches estimates that same number.
    """
    cols = quantile_columns(preds, quantiles)
    levels = list(cols)
    clean = _known(preds, cols)
    y = clean[Y_TRUE].to_numpy(dtype=np.float64)
    q = clean[list(cols.values())].to_numpy(dtype=np.float64)  # (N, K), K in level order
    close = clean[LAST_CLOSE].to_numpy(dtype=np.float64)

    median = m.quantile_at(q, levels, 0.5)
    p_up = m.prob_up(q, levels)
    price_true, price_pred = m.reconstruct_price(close, y), m.reconstruct_price(close, median)
    ic_frame = pd.DataFrame({TS_CODE: clean[TS_CODE], DATE: clean[DATE], Y_TRUE: y, "median": median})
    ics = information_coefficients(ic_frame, "median")
    out: dict[str, float] = {
        "rmse": m.rmse(price_true, price_pred),
        "mae": m.mae(price_true, price_pred),
        "mape": m.mape(price_true, price_pred),
        "direction_accuracy": m.direction_accuracy(y, median),
        "brier_up": m.brier(p_up, y > 0),
        "hit_rate_up": m.hit_rate(p_up, y > 0),
        "ic": ics.ic,
        "rank_ic": ics.rank_ic,
        "icir": ics.icir,
        "rank_icir": ics.rank_icir,
    }
    per_level = m.pinball_by_level(y, q, levels)
    out["pinball"] = float(per_level.mean())
    out |= {f"pinball_q{level:g}": float(v) for level, v in zip(levels, per_level, strict=True)}
    out["crps"] = 2.0 * out["pinball"]
    for mass in INTERVALS:
        lo, hi = m.central_interval(q, levels, mass)
        out[f"coverage_{round(mass * 100)}"] = m.coverage(y, lo, hi)
        out[f"width_{round(mass * 100)}"] = m.mean_width(lo, hi)
    for pct, alpha in (("95", 0.05), ("99", 0.01)):
        var = m.quantile_at(q, levels, alpha)
        hits = m.breaches(y, var)
        out[f"var{pct}_breach_rate"] = float(hits.mean()) if hits.size else math.nan
        out[f"kupiec_p_{pct}"] = m.kupiec_pof(int(hits.sum()), hits.size, alpha)[1]
        if pct == "95":
            shortfall = m.expected_shortfall(q, levels, alpha)
            out["cvar95_pred"] = float(shortfall.mean()) if shortfall.size else math.nan
            out["cvar95_realised"] = m.realised_shortfall(y, var)
    out["n"] = float(len(clean))
    return out


# --- all horizons, and skill -----------------------------------------------------------------------


def metrics_by_horizon(
    preds: pd.DataFrame, quantiles: Sequence[float] | None = None
) -> dict[int, dict[str, float]]:
    """:func:`metrics_for` of each horizon, keyed by the integer horizon in increasing order."""
    return {int(h): metrics_for(g, quantiles) for h, g in preds.groupby(HORIZON, sort=True)}


def skill(model: Mapping[str, float], random_walk: Mapping[str, float]) -> dict[str, float]:
    """Skill over the random walk, ``1 - metric / metric_rw``, for RMSE and CRPS (> 0: better).

    NaN where either metric is missing or NaN, or the random walk's is 0.
    """
    out: dict[str, float] = {}
    for name in ("rmse", "crps"):
        ours, base = model.get(name, math.nan), random_walk.get(name, math.nan)
        ok = math.isfinite(ours) and math.isfinite(base) and base != 0
        out[f"skill_{name}"] = 1.0 - ours / base if ok else math.nan
    return out


def crps_rows(preds: pd.DataFrame, quantiles: Sequence[float] | None = None) -> pd.Series:
    """CRPS of every row (2 x mean pinball over the levels); NaN where the outcome is unknown."""
    cols = quantile_columns(preds, quantiles)
    q = preds[list(cols.values())].to_numpy(dtype=np.float64)
    y = preds[Y_TRUE].to_numpy(dtype=np.float64)
    values = 2.0 * m.pinball(y[:, None], q, np.asarray(list(cols))[None, :]).mean(axis=1)
    return pd.Series(values, index=preds.index)


def pit_rows(preds: pd.DataFrame, quantiles: Sequence[float] | None = None) -> pd.Series:
    """PIT of every row (:func:`stockml.evaluation.metrics.pit`); NaN where the outcome is unknown."""
    cols = quantile_columns(preds, quantiles)
    q = preds[list(cols.values())].to_numpy(dtype=np.float64)
    return pd.Series(m.pit(preds[Y_TRUE].to_numpy(dtype=np.float64), q, list(cols)), index=preds.index)


def rolling_coverage(
    preds: pd.DataFrame,
    quantiles: Sequence[float] | None = None,
    *,
    mass: float = 0.9,
    window: int = 20,
    horizon: int = 1,
) -> pd.DataFrame:
    """Coverage of the central ``mass`` interval over the last ``window`` as-of dates, per as-of date.

    The rows of ``horizon`` that :func:`metrics_for` scores are pooled over symbols: on each date, hits /
    rows of that date and the ``window - 1`` forecast dates before it (so a date weighs by its rows).
    NaN until ``window`` dates are in. Columns ``date``, ``coverage``, ``n`` (rows in the window) and,
    where ``preds`` has it, ``fold`` (the as-of date's fold).
    """
    cols = quantile_columns(preds, quantiles)
    rows = _known(preds[preds[HORIZON] == horizon], cols)
    lower, upper = m.central_interval(rows[list(cols.values())].to_numpy(np.float64), list(cols), mass)
    hits = rows.assign(hit=m.covered(rows[Y_TRUE].to_numpy(np.float64), lower, upper))
    how = {"hits": ("hit", "sum"), "n": ("hit", "size")}
    if "fold" in rows:
        how["fold"] = ("fold", "max")
    per_date = hits.groupby(DATE, sort=True).agg(**how)
    summed = per_date[["hits", "n"]].rolling(window, min_periods=window).sum()
    out = per_date.drop(columns="hits").assign(coverage=summed["hits"] / summed["n"], n=summed["n"])
    return out.reset_index()[[DATE, "coverage", "n", *(["fold"] if "fold" in out else [])]]


def newey_west_t(x: np.ndarray, lags: int) -> float:
    """t statistic of the mean of a series, with a Newey-West (Bartlett) long-run variance."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 3:
        return math.nan
    d = x - x.mean()
    var = float(d @ d) / n
    for k in range(1, min(lags, n - 1) + 1):
        var += 2.0 * (1.0 - k / (lags + 1)) * float(d[k:] @ d[:-k]) / n
    return float(x.mean() / math.sqrt(var / n)) if var > 0 else math.nan


def crps_skill_t(
    model: pd.DataFrame, random_walk: pd.DataFrame, horizon: int, quantiles: Sequence[float] | None = None
) -> float:
    """Is the CRPS gain over the random walk significant? The t statistic of the per-date mean of
    ``crps_rw - crps_model`` (same rows), Newey-West with ``horizon - 1`` lags for overlapping
    targets. Above ~2: significant skill; below ~-2: significantly worse."""
    keys = [TS_CODE, DATE]
    a = model.assign(crps=crps_rows(model, quantiles))[[*keys, "crps"]]
    b = random_walk.assign(crps=crps_rows(random_walk, quantiles))[[*keys, "crps"]]
    both = a.merge(b, on=keys, suffixes=("", "_rw")).dropna()
    per_date = (both["crps_rw"] - both["crps"]).groupby(both[DATE]).mean().sort_index()
    return newey_west_t(per_date.to_numpy(), max(0, horizon - 1))
