"""Forecast metrics as pure array functions: price errors, direction, quantile scores, intervals, tail risk.

Conventions
-----------
* ``y`` is a 1-D array of realised log returns, ``(N,)``. ``q`` is a 2-D array of predicted log-return
  quantiles, ``(N, K)``, for ``levels`` (K floats, strictly increasing in (0, 1), containing levels on
  both sides of 0.5). The point forecast is the median.
* Inputs are taken as clean: NaN propagates. Cleaning (dropping unrealised or missing rows) is the
  caller's job (:func:`stockml.evaluation.aggregate.metrics_for` does it). An empty input gives NaN, never
  a warning.
* Quantiles between two given levels are linear interpolations in the level. Beyond the outermost
  level the tail is a *normal* tail anchored at the median and that outermost quantile (see
  :func:`quantile_at`): the honest minimum when, as by default, no level below 0.05 is forecast. This
  is an assumption of the evaluation, not of the model: real returns have fatter tails, so an
  extrapolated VaR99 is, if anything, too shallow, and its breach rate errs high.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

FloatArray = NDArray[np.float64]

_STD_NORMAL = NormalDist()


def _arr(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _mean(x: FloatArray) -> float:
    """Mean that is NaN (not a warning) on an empty array."""
    return float(x.mean()) if x.size else math.nan


# --- point forecasts on reconstructed prices -------------------------------------------------------


def reconstruct_price(last_close: ArrayLike, log_return: ArrayLike) -> FloatArray:
    """Price implied by a log return from ``last_close``: ``last_close * exp(r)``."""
    return _arr(last_close) * np.exp(_arr(log_return))


def rmse(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Root mean squared error: ``sqrt(mean((a - p)^2))``."""
    err = _arr(actual) - _arr(predicted)
    return math.sqrt(_mean(err**2)) if err.size else math.nan


def mae(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean absolute error: ``mean(|a - p|)``."""
    return _mean(np.abs(_arr(actual) - _arr(predicted)))


def mape(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean absolute percentage error as a fraction (0.02 = 2 %): ``mean(|a - p| / |a|)``.

    Meant for prices, which are positive; a zero actual gives inf.
    """
    a, p = _arr(actual), _arr(predicted)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _mean(np.abs(a - p) / np.abs(a))


def direction_accuracy(y: ArrayLike, point: ArrayLike) -> float:
    """Share of rows where ``sign(point) == sign(y)``, among rows where both are non-zero.

    A zero forecast makes no call, and a zero realised return (a suspended or limit-locked day, or an
    unchanged close) has no direction, so such rows are left out. A forecast that is always 0 (a random
    walk) has no direction accuracy at all: NaN, reported as undefined.
    """
    y_, p_ = _arr(y), _arr(point)
    called = (p_ != 0) & (y_ != 0)
    return _mean((np.sign(y_[called]) == np.sign(p_[called])).astype(np.float64))


# --- quantile scores -------------------------------------------------------------------------------


def pinball(y: ArrayLike, q_pred: ArrayLike, level: ArrayLike) -> FloatArray:
    """Elementwise pinball (quantile) loss: ``max(tau * (y - q), (tau - 1) * (y - q))`` (broadcasts)."""
    diff = _arr(y) - _arr(q_pred)
    tau = _arr(level)
    return np.maximum(tau * diff, (tau - 1.0) * diff)


def pinball_by_level(y: ArrayLike, q: ArrayLike, levels: Sequence[float]) -> FloatArray:
    """Mean pinball loss per quantile level, ``(K,)``; NaN per level when there are no rows."""
    qa = _arr(q)
    lv = _arr(levels)
    if qa.shape[0] == 0:
        return np.full(lv.size, math.nan)
    return pinball(_arr(y)[:, None], qa, lv[None, :]).mean(axis=0)  # (N, K) -> (K,)


def crps_from_quantiles(y: ArrayLike, q: ArrayLike, levels: Sequence[float]) -> float:
    """CRPS approximated from quantiles: ``2 * mean over levels and rows of the pinball loss``.

    ``CRPS(F, y) = 2 * integral_0^1 pinball_tau(y, F^-1(tau)) d tau``; the mean over the given levels
    is that integral's (midpoint-rule) quadrature, so it is close for many evenly spaced levels: for a
    normal, levels 0.005, 0.015, ..., 0.995 give the closed-form CRPS to 0.05 %, levels 0.01, ..., 0.99
    to 1 %. The default seven uneven levels give a coarser number: compare models (and skill) only on
    the same quantile set.
    """
    return 2.0 * _mean(pinball_by_level(y, q, levels))


# --- quantile function: interpolation and normal tails ---------------------------------------------


def _check_levels(levels: Sequence[float]) -> FloatArray:
    lv = _arr(levels)
    if lv.ndim != 1 or lv.size < 2 or np.any(np.diff(lv) <= 0) or lv[0] <= 0 or lv[-1] >= 1:
        raise ValueError(f"levels must be strictly increasing in (0, 1), got {list(levels)}")
    if not lv[0] < 0.5 < lv[-1]:
        raise ValueError(f"levels must have some below and some above 0.5, got {list(levels)}")
    return lv


def _interior(q: FloatArray, lv: FloatArray, level: float) -> FloatArray:
    """Linear interpolation in the level, for ``lv[0] <= level <= lv[-1]``."""
    hi = int(np.searchsorted(lv, level, side="left"))
    if lv[hi] == level:
        return q[:, hi]
    w = (level - lv[hi - 1]) / (lv[hi] - lv[hi - 1])
    return q[:, hi - 1] + w * (q[:, hi] - q[:, hi - 1])


def _tail_scale(q: FloatArray, lv: FloatArray, lower: bool) -> tuple[FloatArray, FloatArray, float]:
    """``(median, sigma, edge level)`` of the normal tail through the median and the outermost quantile."""
    median = _interior(q, lv, 0.5)
    edge = 0 if lower else -1
    sigma = (q[:, edge] - median) / _STD_NORMAL.inv_cdf(float(lv[edge]))
    return median, sigma, float(lv[edge])


def quantile_at(q: ArrayLike, levels: Sequence[float], level: float) -> FloatArray:
    """The ``level`` quantile of each row, ``(N,)``.

    Exact when ``level`` is given; linear in the level between given levels; beyond the outermost level
    a normal tail, ``m + (q_edge - m) * z(level) / z(edge)`` with ``m`` the median, ``z`` the standard
    normal quantile (e.g. VaR99 from the 0.05 quantile: ``m + 1.4142 * (q_0.05 - m)``).
    """
    qa, lv = _arr(q), _check_levels(levels)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if lv[0] <= level <= lv[-1]:
        return _interior(qa, lv, level)
    median, sigma, _ = _tail_scale(qa, lv, lower=level < lv[0])
    return median + sigma * _STD_NORMAL.inv_cdf(level)


def expected_shortfall(q: ArrayLike, levels: Sequence[float], alpha: float = 0.05) -> FloatArray:
    """Predicted CVaR (expected shortfall) per row, ``(N,)``: ``(1 / alpha) * integral_0^alpha Q(u) du``.

    ``Q`` is the quantile function of :func:`quantile_at`. Below the lowest level ``L`` it is the normal
    tail, whose integral is closed-form: ``integral_0^a Q = a * m - sigma * phi(z(a))``; between ``L``
    and ``alpha`` (when ``L < alpha``) the piecewise-linear part is integrated exactly by trapezoids.
    With the default levels (``L = alpha = 0.05``) this is ``m + 1.2540 * (q_0.05 - m)``.
    """
    qa, lv = _arr(q), _check_levels(levels)
    median, sigma, low = _tail_scale(qa, lv, lower=True)
    a0 = min(low, alpha)
    integral = a0 * median - sigma * _STD_NORMAL.pdf(_STD_NORMAL.inv_cdf(a0))
    knots = [a0, *(float(u) for u in lv if a0 < u < alpha), alpha] if alpha > a0 else []
    values = [quantile_at(qa, levels, u) for u in knots]
    for u0, u1, v0, v1 in zip(knots, knots[1:], values, values[1:], strict=False):
        integral = integral + (u1 - u0) * (v0 + v1) / 2.0
    return integral / alpha


def pit(y: ArrayLike, q: ArrayLike, levels: Sequence[float]) -> FloatArray:
    """Probability integral transform: the forecast's CDF at the outcome, ``F(y)``, per row, ``(N,)``.

    ``F`` is the inverse of :func:`quantile_at`: linear in the level between two given quantiles, and
    beyond the outermost quantile the same normal tail (``Phi((y - m) / sigma)``), so
    ``pit(quantile_at(q, levels, u)) == u`` for every ``u``. An outcome beyond the outermost quantile
    thus lands in ``(0, L)`` or ``(U, 1)`` by how far out it lies, neither clamped to 0 / 1 nor spread at
    random, and a forecast whose tails are too thin piles its PIT values up at the very ends. Calibrated:
    uniform on (0, 1); too narrow: U-shaped; too wide: hump-shaped; biased: sloped. Quantiles must be
    non-decreasing along a row; a NaN outcome or quantile gives NaN.
    """
    qa, lv, y_ = _arr(q), _check_levels(levels), _arr(y)
    k = (qa <= y_[:, None]).sum(axis=1)  # quantiles at or below y: 0 = lower tail ... K = upper tail
    upper = np.clip(k, 1, lv.size - 1)
    rows = np.arange(y_.size)
    lo, hi = qa[rows, upper - 1], qa[rows, upper]  # inside: lo <= y < hi, so hi > lo
    with np.errstate(divide="ignore", invalid="ignore"):
        out = lv[upper - 1] + (y_ - lo) / (hi - lo) * (lv[upper] - lv[upper - 1])
        for tail, lower in ((k == 0, True), (k == lv.size, False)):
            median, sigma, _ = _tail_scale(qa, lv, lower)
            # a tail of zero width (outermost quantile == median) holds no mass: F is 0 below, 1 above
            value = np.where(sigma == 0, 0.0 if lower else 1.0, ndtr((y_ - median) / sigma))
            out = np.where(tail, value, out)
    return np.where(np.isnan(y_) | np.isnan(qa).any(axis=1), math.nan, out)


def prob_up(q: ArrayLike, levels: Sequence[float]) -> FloatArray:
    """P(up): the forecast's probability of a positive (log) return, ``1 - F(0)`` with ``F`` the CDF of
    :func:`pit` (linear between quantiles, normal tails), per row ``(N,)``. A zero median gives 0.5."""
    qa = _arr(q)
    return 1.0 - pit(np.zeros(qa.shape[0]), qa, levels)


def brier(prob: ArrayLike, happened: ArrayLike) -> float:
    """Brier score of probabilities against 0/1 outcomes, ``mean((p - o)^2)``: 0 is perfect, 0.25 a coin."""
    p, o = _arr(prob), _arr(happened)
    return _mean((p - o) ** 2)


def hit_rate(prob: ArrayLike, happened: ArrayLike) -> float:
    """Share of calls right: ``p > 0.5`` calls up, ``p < 0.5`` down; ``p == 0.5`` calls nothing and
    counts half, so a forecast without a view scores 0.5 whatever the base rate."""
    p, o = _arr(prob), _arr(happened)
    right = np.where(p == 0.5, 0.5, ((p > 0.5) == (o > 0.5)).astype(np.float64))
    return _mean(right)


def pit_histogram(values: ArrayLike, bins: int = 10) -> FloatArray:
    """Share of the finite PIT ``values`` in each of ``bins`` equal bins of [0, 1], ``(bins,)``; a
    calibrated forecast has every share near ``1 / bins``. NaN everywhere when there is no value."""
    v = _arr(values)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.full(bins, math.nan)
    counts = np.bincount(np.minimum((v * bins).astype(np.int64), bins - 1), minlength=bins)  # 1.0 -> last
    return counts / v.size


# --- intervals and tail risk -----------------------------------------------------------------------


def covered(y: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> FloatArray:
    """Per row, 1.0 where ``lower <= y <= upper`` (bounds included), else 0.0."""
    y_ = _arr(y)
    return ((y_ >= _arr(lower)) & (y_ <= _arr(upper))).astype(np.float64)


def coverage(y: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Empirical coverage: share of rows with ``lower <= y <= upper`` (bounds included)."""
    return _mean(covered(y, lower, upper))


def mean_width(lower: ArrayLike, upper: ArrayLike) -> float:
    """Mean interval width: ``mean(upper - lower)``."""
    return _mean(_arr(upper) - _arr(lower))


def central_interval(q: ArrayLike, levels: Sequence[float], mass: float) -> tuple[FloatArray, FloatArray]:
    """Bounds of the central ``mass`` interval: the ``0.5 -/+ mass / 2`` quantiles (:func:`quantile_at`)."""
    half = mass / 2.0
    return quantile_at(q, levels, 0.5 - half), quantile_at(q, levels, 0.5 + half)


def breaches(y: ArrayLike, var: ArrayLike) -> FloatArray:
    """VaR breach indicator (1.0 / 0.0): the realised return fell strictly below the predicted quantile."""
    return (_arr(y) < _arr(var)).astype(np.float64)


def realised_shortfall(y: ArrayLike, var: ArrayLike) -> float:
    """Realised CVaR: mean of ``y`` over the breaches of ``var``; NaN when there is none."""
    y_ = _arr(y)
    return _mean(y_[y_ < _arr(var)])


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)


def kupiec_pof(n_breaches: int, n: int, p: float) -> tuple[float, float]:
    """Kupiec's proportion-of-failures test: ``(LR, p-value)``.

    ``LR = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-x/n)^(n-x) (x/n)^x]`` with ``0 ln 0 = 0`` (so ``x = 0`` and
    ``x = n`` are defined), and the p-value is the chi-square(1) survival function,
    ``erfc(sqrt(LR / 2))``. It assumes independent breaches; overlapping multi-day horizons and
    cross-sectionally correlated symbols break that, so read it as a calibration gauge, not a test of size.
    ``n = 0`` gives NaN.
    """
    if n <= 0:
        return math.nan, math.nan
    x, rate = float(n_breaches), n_breaches / n
    null = _xlogy(n - x, 1.0 - p) + _xlogy(x, p)
    alt = _xlogy(n - x, 1.0 - rate) + _xlogy(x, rate)
    lr = max(2.0 * (alt - null), 0.0)  # >= 0 analytically; clip rounding
    return lr, math.erfc(math.sqrt(lr / 2.0))
