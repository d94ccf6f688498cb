"""Online interval calibration (adaptive conformal on each quantile's spread): it repairs a too-narrow
forecast, never moves the median, and a forecast made at date t never uses an outcome unknown at t."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from stockml.columns import quantile_column
from stockml.evaluation.calibration import aci_spread

LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
COLS = [quantile_column(q) for q in LEVELS]


def _frame(n_dates: int, sd: float, seed: int, horizons: int = 2) -> pd.DataFrame:
    """10 symbols; forecasts are N(0, 1) quantiles, outcomes N(0, sd^2)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-01", periods=n_dates)
    rows = [(f"S{i}", d, h) for d in dates for h in range(1, horizons + 1) for i in range(10)]
    frame = pd.DataFrame(rows, columns=["ts_code", "date", "horizon"])
    for q, col in zip(LEVELS, COLS, strict=True):
        frame[col] = NormalDist().inv_cdf(q)
    frame["y_true"] = rng.normal(scale=sd, size=len(frame))
    return frame


def _coverage_90(frame: pd.DataFrame) -> float:
    return float(((frame["y_true"] >= frame["q0.05"]) & (frame["y_true"] <= frame["q0.95"])).mean())


def test_a_too_narrow_forecast_is_widened_to_its_nominal_coverage() -> None:
    raw = _frame(500, sd=2.0, seed=0)
    calibrated = aci_spread(raw, LEVELS, gamma=0.02)
    late = calibrated["date"] >= calibrated["date"].unique()[100]  # after the first 100 dates
    assert _coverage_90(raw) < 0.65  # N(0, 1)'s interval on N(0, 4) outcomes: 0.59
    assert 0.87 < _coverage_90(calibrated[late]) < 0.93  # measured 0.901
    np.testing.assert_array_equal(calibrated["q0.5"], raw["q0.5"])  # the median never moves
    assert (np.diff(calibrated[COLS].to_numpy(), axis=1) >= 0).all()
    same = _frame(500, sd=1.0, seed=1)  # already calibrated: stays about where it was
    assert abs(_coverage_90(aci_spread(same, LEVELS, gamma=0.02)) - _coverage_90(same)) < 0.03


def test_a_forecast_never_uses_an_outcome_unknown_at_its_date() -> None:
    """Outcomes of as-of date k (index) are known h dates later: changing them leaves every forecast of
    horizon h made before date k + h as it was, and changes later ones."""
    raw = _frame(60, sd=2.0, seed=2)
    dates = raw["date"].unique()
    base = aci_spread(raw, LEVELS, gamma=0.05)
    k = 30
    shocked = raw.copy()
    shocked.loc[shocked["date"] == dates[k], "y_true"] *= -10.0
    after = aci_spread(shocked, LEVELS, gamma=0.05)
    for h in (1, 2):
        rows = base["horizon"] == h
        early = rows & (base["date"] < dates[k + h])
        pd.testing.assert_frame_equal(base.loc[early, COLS], after.loc[early, COLS])
        later = rows & (base["date"] >= dates[k + h])
        assert not np.allclose(base.loc[later, COLS], after.loc[later, COLS])
