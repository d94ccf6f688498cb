"""Online interval calibration: adaptive conformal inference on the spread of each quantile level.

A forecast's quantile at level tau is moved away from (or towards) its median by a log-scale factor:
``q'_tau = m + (q_tau - m) * exp(phi_tau)``, with ``m`` the median forecast. After each as-of date's outcomes
are known, ``phi`` is updated from the share of outcomes that fell below the calibrated quantile (Gibbs
and Candes, 2021, with the offset on the spread rather than on the level):

``phi_tau <- phi_tau + gamma * (below - tau) / tau`` for tau < 0.5 (too many below: widen), and
``phi_tau <- phi_tau + gamma * (tau - below) / (1 - tau)`` for tau > 0.5 (too few below: widen),

``below`` being the share of that date's symbols whose outcome fell below ``q'_tau``; dividing by the tail
mass lets a 5% level adapt as fast as a 25% one. The factor is scale-free, so it works on raw log-return
quantiles of every symbol alike, and the median is never moved. Quantiles are sorted after the adjustment.

:class:`AciState` is the state one forecaster carries (``phi`` per horizon and level, and the last as-of
date learned from per horizon). The walk-forward report scores each model's forecasts calibrated as
``<model>.aci`` (:func:`aci_history`, from no adjustment at the first as-of date); the state it ends in
travels in the model's bundle (``calibration.json``); the daily flow learns from each day's realised
outcomes (:func:`learn`) and stores the result on the registry version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from stockml.columns import quantile_column

SUFFIX = ".aci"  # the report name of a model's calibrated forecasts: "lstm.aci"


def _median_index(quantiles: tuple[float, ...]) -> int:
    if 0.5 not in quantiles:
        raise ValueError(f"calibration needs the median among the quantiles, got {quantiles}")
    return quantiles.index(0.5)


@dataclass(frozen=True)
class AciState:
    """``phi[h-1][i]``: the log spread factor of level ``quantiles[i]`` at horizon h; ``through[h-1]``: the
    last as-of date (ISO) whose horizon-h outcomes were learned from, None before the first."""

    quantiles: tuple[float, ...]
    gamma: float
    phi: tuple[tuple[float, ...], ...]
    through: tuple[str | None, ...]

    @classmethod
    def start(cls, quantiles: tuple[float, ...], horizon: int, gamma: float) -> AciState:
        """No adjustment yet (every factor 1) and nothing learned."""
        _median_index(quantiles)
        return cls(tuple(quantiles), gamma, ((0.0,) * len(quantiles),) * horizon, (None,) * horizon)

    @property
    def horizon(self) -> int:
        return len(self.phi)

    def to_json(self) -> str:
        return json.dumps(
            {
                "method": "aci_spread",
                "quantiles": list(self.quantiles),
                "gamma": self.gamma,
                "phi": [list(row) for row in self.phi],
                "through": list(self.through),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> AciState:
        data = json.loads(text)
        if data.get("method") != "aci_spread":
            raise ValueError(f"unknown calibration method {data.get('method')!r}")
        phi = tuple(tuple(float(v) for v in row) for row in data["phi"])
        quantiles = tuple(float(q) for q in data["quantiles"])
        if any(len(row) != len(quantiles) for row in phi) or len(data["through"]) != len(phi):
            raise ValueError("calibration state: phi must be (horizon, quantiles) and through (horizon,)")
        return cls(quantiles, float(data["gamma"]), phi, tuple(data["through"]))

    def apply(self, preds: pd.DataFrame) -> pd.DataFrame:
        """``preds`` (quantile columns and ``horizon``) with each horizon's quantiles calibrated."""
        cols = [quantile_column(q) for q in self.quantiles]
        mid = _median_index(self.quantiles)
        q = preds[cols].to_numpy(np.float64)
        h = preds["horizon"].to_numpy(np.int64)
        if len(h) and (h.min() < 1 or h.max() > self.horizon):
            raise ValueError(f"horizons {h.min()}..{h.max()} outside the calibration's 1..{self.horizon}")
        phi = np.asarray(self.phi)[h - 1]  # (n, Q)
        out = preds.copy()
        out[cols] = _spread(q, phi, mid)
        return out


def _spread(q: np.ndarray, phi: np.ndarray, mid: int) -> np.ndarray:
    """``(n, Q)`` quantiles with factors ``phi`` ((Q,) or (n, Q)) applied around the median, sorted."""
    median = q[:, mid : mid + 1]
    return np.sort(median + (q - median) * np.exp(phi), axis=1)


def _step(phi: np.ndarray, calibrated: np.ndarray, y: np.ndarray, state: AciState) -> np.ndarray:
    """``phi`` after one as-of date whose outcomes ``y`` (n,) met the ``calibrated`` (n, Q) forecasts."""
    finite = np.isfinite(y)
    if not finite.any():
        return phi
    levels = np.asarray(state.quantiles)
    side = np.where(levels < 0.5, 1.0, -1.0) / np.minimum(levels, 1.0 - levels)
    below = (y[finite, None] < calibrated[finite]).mean(axis=0)  # (Q,)
    out = phi + state.gamma * side * (below - levels)
    out[_median_index(state.quantiles)] = 0.0
    return out


def _date_slices(block: pd.DataFrame) -> tuple[np.ndarray, list[slice]]:
    """The as-of dates of a ``date``-sorted block and each date's rows as one slice."""
    dates, starts = np.unique(block["date"].to_numpy(), return_index=True)
    bounds = [*starts, len(block)]
    return dates, [slice(bounds[i], bounds[i + 1]) for i in range(len(dates))]


def _iso(date: object) -> str:
    return pd.Timestamp(date).date().isoformat()


def calibrate_history(preds: pd.DataFrame, state: AciState) -> tuple[pd.DataFrame, AciState]:
    """Walk-forward use: ``preds`` (one row per ts_code, as-of ``date`` and ``horizon``, quantile columns,
    ``y_true``) calibrated causally, and the state after learning every date's outcomes.

    The forecast made at as-of date ``d_i`` for horizon h uses updates from as-of dates ``d_j``,
    ``j <= i - h``, only, whose h-day outcomes are known by ``d_i`` (the dates are trading days, so ``i - h``
    dates back is at least h trading days back). Rows and other columns are unchanged."""
    out = preds.copy()
    cols = [quantile_column(q) for q in state.quantiles]
    mid = _median_index(state.quantiles)
    phis, through = [np.asarray(row) for row in state.phi], list(state.through)
    for h, unsorted in preds.groupby("horizon", sort=True):
        block = unsorted.sort_values("date", kind="stable")
        dates, rows = _date_slices(block)
        q = block[cols].to_numpy(np.float64)  # (n, Q)
        y = block["y_true"].to_numpy(np.float64)
        adjusted = np.empty_like(q)
        phi, lag = phis[int(h) - 1], int(h)
        for i in range(len(dates) + lag):
            j = i - lag
            if j >= 0:  # the outcomes of date j are known now: learn from the calibrated forecasts then
                phi = _step(phi, adjusted[rows[j]], y[rows[j]], state)
                through[int(h) - 1] = _iso(dates[j])
            if i < len(dates):
                adjusted[rows[i]] = _spread(q[rows[i]], phi, mid)
        phis[int(h) - 1] = phi
        out.loc[block.index, cols] = adjusted
    return out, replace(state, phi=tuple(tuple(float(v) for v in p) for p in phis), through=tuple(through))


def learn(state: AciState, published: pd.DataFrame) -> AciState:
    """Serving use: ``state`` after the outcomes of ``published`` forecasts (as-of ``date``, ``horizon``,
    the calibrated quantile columns that were published, ``y_true``), in date order, skipping the dates it
    has already learned from. The caller passes only forecasts whose outcomes are known; a row whose
    ``y_true`` is missing (a suspended symbol) is ignored."""
    phis, through = [np.asarray(row) for row in state.phi], list(state.through)
    cols = [quantile_column(q) for q in state.quantiles]
    for h, unsorted in published.groupby("horizon", sort=True):
        if not 1 <= int(h) <= state.horizon:
            continue
        block = unsorted.sort_values("date", kind="stable")
        last = through[int(h) - 1]
        if last is not None:
            block = block[pd.to_datetime(block["date"]) > pd.Timestamp(last)]
        dates, rows = _date_slices(block)
        q = block[cols].to_numpy(np.float64)
        y = block["y_true"].to_numpy(np.float64)
        for date, now in zip(dates, rows, strict=True):
            phis[int(h) - 1] = _step(phis[int(h) - 1], q[now], y[now], state)
            through[int(h) - 1] = _iso(date)
    return replace(state, phi=tuple(tuple(float(v) for v in p) for p in phis), through=tuple(through))


def aci_spread(preds: pd.DataFrame, quantiles: tuple[float, ...], gamma: float) -> pd.DataFrame:
    """``preds`` (one row per ts_code, as-of ``date`` and ``horizon``, quantile columns and ``y_true``)
    with online-calibrated quantile columns; rows and other columns unchanged."""
    return aci_history(preds, quantiles, gamma)[0]


def aci_history(
    preds: pd.DataFrame, quantiles: tuple[float, ...], gamma: float
) -> tuple[pd.DataFrame, AciState]:
    """:func:`aci_spread` and the calibration state after learning every as-of date's outcomes."""
    horizon = int(preds["horizon"].max()) if len(preds) else 1
    return calibrate_history(preds, AciState.start(tuple(quantiles), horizon, gamma))
