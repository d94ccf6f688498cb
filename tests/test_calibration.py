"""Online interval calibration (adaptive conformal on each quantile's spread): it repairs a too-narrow
forecast, never moves the median, and a forecast made at date t never uses an outcome unknown at t."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from stockml.columns import quantile_column
from stockml.evaluation.calibration import AciState, aci_history, aci_spread, learn
from stockml.serving.forecast import learned_calibration

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


def test_serving_learns_the_state_the_walk_forward_ends_in() -> None:
    """Learning day by day from the published (calibrated) forecasts reaches the state the walk-forward
    ended in; dates already learned are skipped, so a rerun changes nothing."""
    raw = _frame(80, sd=2.0, seed=3)
    calibrated, end = aci_history(raw, LEVELS, gamma=0.02)
    assert end.through == (str(raw["date"].max().date()),) * 2
    assert end.phi[0][0] > 0.1 and end.phi[0][3] == 0.0  # widened, median untouched
    start = AciState.start(LEVELS, 2, 0.02)
    early = calibrated["date"] < "2024-02-01"
    first, rest = calibrated[early], calibrated[~early]
    stepwise = learn(learn(start, first), calibrated)  # the second call skips what the first learned
    assert stepwise.through == end.through
    np.testing.assert_allclose(np.asarray(stepwise.phi), np.asarray(end.phi), rtol=1e-12)
    assert learn(end, rest) == end
    assert AciState.from_json(end.to_json()).through == end.through
    np.testing.assert_allclose(np.asarray(AciState.from_json(end.to_json()).phi), np.asarray(end.phi))


def test_the_daily_update_learns_only_outcomes_known_at_its_date() -> None:
    """Published forecasts whose target day is after as-of are not learned from, even if the frame held a
    label there (it cannot, point-in-time; here it does, to prove the filter)."""
    dates = pd.bdate_range("2024-03-01", periods=4)
    published = pd.DataFrame(
        {"ts_code": "S0", "as_of": dates.date, "horizon": 1, "target_date": dates.shift(1, "B").date}
    )
    for q, col in zip(LEVELS, COLS, strict=True):
        published[col] = NormalDist().inv_cdf(q) * 0.01
    frame = pd.DataFrame({"ts_code": "S0", "trade_date": dates, "label_h1": 0.05})  # above every q0.95
    start = AciState.start(LEVELS, 1, 0.01)
    state = learned_calibration(start, published, frame, ["label_h1"], dates[2].date())
    assert state.through == (str(dates[1].date()),)  # as-of dates 0 and 1: targets 1 and 2 <= as-of 2
    assert state.phi[0][-1] == pytest.approx(2 * 0.01 * 0.95 / 0.05)  # two misses above q0.95: widened
    assert state.phi[0][0] == pytest.approx(-2 * 0.01 * 0.05 / 0.05)  # nothing below q0.05: narrowed
