"""Volatility baselines on simulated GARCH(1,1)-t returns with known parameters (seeded, no I/O)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from scipy import stats

from stockml.features.volatility import ewma_volatility
from stockml.training.splits import DateRange
from stockml.training.vol_baselines import (
    LINEAR_FEATURES,
    ewma_vol_quantiles,
    fit_garch_t,
    garch_t_quantiles,
    linear_qr_coefficients,
    linear_qr_quantiles,
)

QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
OMEGA, ALPHA, BETA, NU = 0.08, 0.08, 0.90, 6.0  # percent units: daily sd 2%, persistence 0.98
H = 3
LABELS = [f"label_h{h}" for h in range(1, H + 1)]
TRAIN_DAYS = 700
Baseline = Callable[..., np.ndarray]
BASELINES: dict[str, Baseline] = {
    "ewma_vol": ewma_vol_quantiles,
    "garch_t": garch_t_quantiles,
    "linear": linear_qr_quantiles,
}


def _simulate(rng: np.random.Generator, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Daily log returns of a GARCH(1,1)-t process and their true conditional sd (both as fractions)."""
    eps = rng.standard_t(NU, n_days) * np.sqrt((NU - 2) / NU)
    r, sd = np.empty(n_days), np.empty(n_days)
    var = OMEGA / (1 - ALPHA - BETA)
    for t in range(n_days):
        sd[t] = np.sqrt(var)
        r[t] = sd[t] * eps[t]
        var = OMEGA + ALPHA * r[t] ** 2 + BETA * var
    return r / 100, sd / 100


def _frame(returns: dict[str, np.ndarray], days: pd.DatetimeIndex, horizon: int = H) -> pd.DataFrame:
    """Long frame with ``logret_1`` and cumulative forward labels (NaN where the future is unknown)."""
    parts = []
    for code, r in returns.items():
        cs = np.concatenate([[0.0], np.cumsum(r), np.full(horizon, np.nan)])  # cs[i] = sum of r[:i]
        i = np.arange(len(r))
        labels = {f"label_h{h}": cs[i + h + 1] - cs[i + 1] for h in range(1, horizon + 1)}
        parts.append(pd.DataFrame({"ts_code": code, "trade_date": days[: len(r)], "logret_1": r, **labels}))
    return pd.concat(parts, ignore_index=True)


def _crps(y: np.ndarray, q: np.ndarray) -> float:
    """2 x mean pinball loss over the levels: (N, H) labels, (N, H, Q) quantiles."""
    err = y[:, :, None] - q
    levels = np.asarray(QUANTILES)
    return float(2 * np.mean(np.maximum(levels * err, (levels - 1) * err)))


@pytest.fixture(scope="module")
def market() -> dict:
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2018-01-01", periods=1000)
    sims = {f"{k:06d}.SZ": _simulate(rng, len(days)) for k in range(8)}
    frame = _frame({c: r for c, (r, _) in sims.items()}, days)
    sd = pd.DataFrame({c: s for c, (_, s) in sims.items()}, index=days).stack()
    train = DateRange(days[0], days[TRAIN_DAYS - 1])
    test = frame[(frame["trade_date"] >= days[TRAIN_DAYS + H]) & frame[LABELS].notna().all(axis=1)]
    codes, dates = test["ts_code"].to_numpy(), test["trade_date"].to_numpy()
    forecasts = {name: fn(frame, LABELS, QUANTILES, train, codes, dates) for name, fn in BASELINES.items()}
    return {
        "frame": frame,
        "days": days,
        "train": train,
        "y": test[LABELS].to_numpy(),
        "true_sd": sd.loc[list(zip(dates, codes, strict=True))].to_numpy(),
        "forecasts": forecasts,
    }


@pytest.mark.parametrize("name", BASELINES)
def test_forecasts_are_finite_sorted_quantiles(market: dict, name: str) -> None:
    q = market["forecasts"][name]
    assert q.shape == (len(market["y"]), H, len(QUANTILES)) and q.dtype == np.float32
    assert np.isfinite(q).all()
    assert (np.diff(q, axis=2) >= 0).all()
    width = q[:, :, -1] - q[:, :, 0]
    assert (width > 0).all()
    median = q[:, :, QUANTILES.index(0.5)]
    if name == "linear":  # a fitted median, but small next to the spread on a zero-mean process
        assert np.abs(median).mean() < 0.05 * width.mean()
    else:
        assert np.abs(median).max() < 1e-9


@pytest.mark.parametrize("name", BASELINES)
def test_forecasts_are_calibrated_out_of_sample(market: dict, name: str) -> None:
    y, q = market["y"], market["forecasts"][name]
    below = (y[:, :, None] < q).mean(axis=(0, 1))
    np.testing.assert_allclose(below, QUANTILES, atol=0.03)
    inside_90 = ((y >= q[:, :, 0]) & (y <= q[:, :, -1])).mean()
    assert abs(inside_90 - 0.90) < 0.04


@pytest.mark.parametrize("name", ["ewma_vol", "garch_t"])
def test_vol_models_are_sharper_than_constant_width(market: dict, name: str) -> None:
    frame, train, y = market["frame"], market["train"], market["y"]
    fit_rows = frame[train.mask(frame["trade_date"]) & frame[LABELS].notna().all(axis=1)][LABELS]
    pooled = np.quantile(fit_rows, QUANTILES, axis=0).T - np.median(fit_rows, axis=0)[:, None]  # (H, Q)
    constant = np.broadcast_to(pooled, (len(y), H, len(QUANTILES)))
    q = market["forecasts"][name]
    assert _crps(y, q) < 0.995 * _crps(y, constant)
    width = q[:, 0, -1] - q[:, 0, 0]  # the one-day 90% interval follows the true conditional sd
    assert np.corrcoef(width, market["true_sd"])[0, 1] > 0.8


def test_ewma_vol_scales_rows_without_sigma_by_the_pooled_label_sd(market: dict) -> None:
    frame, days, train = market["frame"], market["days"], market["train"]
    codes, dates = np.array(["000000.SZ", "000001.SZ", "000000.SZ"]), np.array([days[5]] * 2 + [days[800]])
    q = ewma_vol_quantiles(frame, LABELS, QUANTILES, train, codes, dates)
    assert np.isfinite(q).all() and np.array_equal(q[0], q[1])  # day 5: no sigma_t yet, one pooled scale
    panel = frame.pivot(index="trade_date", columns="ts_code", values="logret_1")
    sigma = ewma_volatility(panel).loc[days[800], "000000.SZ"]
    q_z = q[2] / (sigma * np.sqrt(np.arange(1, H + 1)))[:, None]  # (H, Q) training z quantiles
    sd = frame.loc[train.mask(frame["trade_date"]), LABELS].dropna().std(ddof=0).to_numpy()
    np.testing.assert_allclose(q[0], sd[:, None] * q_z, rtol=1e-5)


def test_garch_recovers_the_persistence_of_a_long_series() -> None:
    r, _ = _simulate(np.random.default_rng(1), 4000)
    fit = fit_garch_t(r)
    assert fit is not None
    assert abs(fit.persistence - (ALPHA + BETA)) < 0.05
    assert abs(fit.nu - NU) < 2.0
    assert fit_garch_t(r[:200]) is None  # fewer than min_obs returns: no fit


def test_garch_filter_equals_the_arch_conditional_variance_in_sample(market: dict) -> None:
    frame, days, train = market["frame"], market["days"], market["train"]
    code = "000003.SZ"
    r = frame.loc[(frame["ts_code"] == code) & train.mask(frame["trade_date"]), "logret_1"].to_numpy()
    res = arch_model(100 * r, mean="Zero", vol="GARCH", p=1, q=1, dist="t").fit(disp="off")
    nu = res.params["nu"]
    t_95 = stats.t.ppf(0.95, nu) * np.sqrt((nu - 2) / nu)
    origins = days[100 : TRAIN_DAYS - 1]  # one-day forecast from t = arch's conditional sd of t+1
    q = garch_t_quantiles(
        frame, LABELS, QUANTILES, train, np.array([code] * len(origins)), origins.to_numpy()
    )
    expected = res.conditional_volatility[101:TRAIN_DAYS] / 100 * t_95
    np.testing.assert_allclose(q[:, 0, -1], expected, rtol=1e-5)


def test_garch_uses_ewma_vol_for_a_symbol_with_short_training_history() -> None:
    rng = np.random.default_rng(2)
    days = pd.bdate_range("2018-01-01", periods=900)
    long_r, _ = _simulate(rng, 900)
    short_r, _ = _simulate(rng, 900)
    short_r[:550] = np.nan  # listed late: 150 training returns
    frame = _frame({"LONG": long_r, "SHORT": short_r}, days)
    train = DateRange(days[0], days[TRAIN_DAYS - 1])
    codes, dates = np.array(["LONG", "SHORT"]), np.array([days[800]] * 2)
    garch = garch_t_quantiles(frame, LABELS, QUANTILES, train, codes, dates)
    ewma = ewma_vol_quantiles(frame, LABELS, QUANTILES, train, codes, dates)
    np.testing.assert_array_equal(garch[1], ewma[1])
    assert not np.allclose(garch[0], ewma[0])


@pytest.mark.parametrize("cut_day", [TRAIN_DAYS - 1, 800])
def test_forecasts_ignore_everything_after_their_date(cut_day: int) -> None:
    rng = np.random.default_rng(3)
    days = pd.bdate_range("2018-01-01", periods=900)
    frame = _frame({f"S{k}": _simulate(rng, len(days))[0] for k in range(4)}, days)
    train, cut = DateRange(days[0], days[TRAIN_DAYS - 1]), days[cut_day]
    later = (frame["trade_date"] > cut).to_numpy()
    noise = rng.standard_normal((int(later.sum()), 1 + H))
    changed = frame.copy()
    changed.loc[later, "logret_1"] = 3 * changed.loc[later, "logret_1"] + 0.01 * noise[:, 0]
    changed.loc[later, LABELS] = changed.loc[later, LABELS] + 0.05 * noise[:, 1:]
    rows = frame[frame["trade_date"] >= days[650]]
    codes, dates = rows["ts_code"].to_numpy(), rows["trade_date"].to_numpy()
    known = (rows["trade_date"] <= cut).to_numpy()
    levels = (0.1, 0.5, 0.9)
    for name, fn in BASELINES.items():
        before = fn(frame, LABELS, levels, train, codes, dates)
        after = fn(changed, LABELS, levels, train, codes, dates)
        np.testing.assert_array_equal(before[known], after[known], err_msg=name)
        assert not np.allclose(before[~known], after[~known]), name  # the check can see a change


def _planted_market(seed: int, signal_size: float) -> tuple[pd.DataFrame, pd.DatetimeIndex, np.ndarray]:
    """6 GARCH-t symbols whose next-day return has ``signal_size * sd * sign(r_t)`` added to its median."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2018-01-01", periods=1000)
    returns, signals = {}, []
    for k in range(6):
        r, sd = _simulate(rng, len(days))
        returns[f"S{k}"] = r
        signals.append(signal_size * np.append(sd[1:], np.nan) * np.sign(r))
    frame = _frame(returns, days, horizon=1)
    signal = np.concatenate(signals)
    return frame.assign(label_h1=frame["label_h1"] + signal), days, signal


def test_linear_finds_a_planted_median() -> None:
    frame, days, signal = _planted_market(4, 0.2)
    train = DateRange(days[0], days[TRAIN_DAYS - 1])
    test = (frame["trade_date"] > days[TRAIN_DAYS]).to_numpy() & frame["label_h1"].notna().to_numpy()
    levels = (0.1, 0.5, 0.9)
    codes, dates = frame.loc[test, "ts_code"].to_numpy(), frame.loc[test, "trade_date"].to_numpy()
    q = linear_qr_quantiles(frame, ["label_h1"], levels, train, codes, dates)
    assert np.corrcoef(q[:, 0, 1], signal[test])[0, 1] > 0.5
    coef = linear_qr_coefficients(frame, ["label_h1"], levels, train)
    assert coef[0, 1, LINEAR_FEATURES.index("ret_1")] > 0.1


def test_linear_median_is_flat_on_noise() -> None:
    frame, days, _ = _planted_market(5, 0.0)
    train = DateRange(days[0], days[TRAIN_DAYS - 1])
    levels = (0.1, 0.5, 0.9)
    coef = linear_qr_coefficients(frame, ["label_h1"], levels, train)[0, 1]  # median, (K,)
    for feature, days_summed in (("ret_1", 1), ("ret_5", 5), ("ret_20", 20)):  # features of sd ~ sqrt(days)
        assert abs(coef[LINEAR_FEATURES.index(feature)]) * np.sqrt(days_summed) < 0.06, feature
    test = frame[frame["trade_date"] > days[TRAIN_DAYS]]
    codes, dates = test["ts_code"].to_numpy(), test["trade_date"].to_numpy()
    median = linear_qr_quantiles(frame, ["label_h1"], levels, train, codes, dates)[:, 0, 1]
    panel = frame.pivot(index="trade_date", columns="ts_code", values="logret_1")
    sigma = ewma_volatility(panel).stack().loc[list(zip(dates, codes, strict=True))].to_numpy()
    assert np.std(median / sigma) < 0.05  # in z units: the fitted median barely moves
