"""Calibration diagnostics: PIT values and histograms, rolling and per-fold coverage, and the plots a run
writes for every model and baseline."""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from report_helpers import synthetic_evaluation

from stockml.evaluation import metrics as m
from stockml.evaluation.aggregate import rolling_coverage
from stockml.evaluation.plots import pit_table
from stockml.evaluation.report import Evaluation
from stockml.evaluation.run import EvalRun, write_artifacts
from stockml.features import FeatureConfig, FeatureResult, Vocab
from stockml.training.config import EvalConfig, TrainConfig

N = NormalDist()
LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
CHI2_9DF_999 = 27.877  # 99.9% quantile of chi-square with 9 degrees of freedom


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    return synthetic_evaluation()


def _normal_forecasts(rng: np.random.Generator, n: int, levels: tuple[float, ...], width: float):
    """Outcomes ``loc + scale * Z`` and the quantiles of ``loc + width * scale * Z`` (width 1: calibrated)."""
    loc, scale = rng.normal(0.0, 0.01, n), rng.uniform(0.01, 0.03, n)
    y = loc + scale * rng.standard_normal(n)
    z = np.array([N.inv_cdf(lv) for lv in levels])
    return y, loc[:, None] + width * scale[:, None] * z[None, :]  # (N, K)


def test_pit_inverts_the_quantile_function_in_the_body_and_the_tails() -> None:
    rng = np.random.default_rng(0)
    _, q = _normal_forecasts(rng, 50, LEVELS, 1.0)
    for u in (0.001, 0.03, 0.05, 0.07, 0.2, 0.5, 0.61, 0.9, 0.97, 0.999):
        np.testing.assert_allclose(m.pit(m.quantile_at(q, LEVELS, u), q, LEVELS), u, atol=1e-12)


def test_pit_by_hand() -> None:
    q = np.array([[N.inv_cdf(lv) for lv in LEVELS]] * 5)  # a standard normal's quantiles
    y = np.array([-3.0, (q[0, 2] + q[0, 3]) / 2, 0.0, 3.0, np.nan])
    # the normal tail through the median 0 and q0.05 = -1.645 has sigma 1: F(-3) = Phi(-3) = 0.00135, not 0;
    # half way between q0.25 and q0.5 is level 0.375 (linear in the level)
    expected = [N.cdf(-3.0), 0.375, 0.5, N.cdf(3.0), np.nan]
    np.testing.assert_allclose(m.pit(y, q, LEVELS), expected, rtol=1e-12)
    flat = np.zeros((2, len(LEVELS)))  # every quantile 0: no tail mass at all
    np.testing.assert_array_equal(m.pit(np.array([-0.01, 0.01]), flat, LEVELS), [0.0, 1.0])
    flat[1, 0] = np.nan  # a missing quantile: no PIT, not a 0
    np.testing.assert_array_equal(m.pit(np.array([-0.01, -0.01]), flat, LEVELS), [0.0, np.nan])


def test_pit_histogram_shares() -> None:
    # 0 and 0.05 in the first bin, 0.15 in the second, 1.0 in the last; NaN left out
    shares = m.pit_histogram([0.0, 0.05, 0.15, 1.0, np.nan], bins=10)
    np.testing.assert_allclose(shares, [0.5, 0.25, 0, 0, 0, 0, 0, 0, 0, 0.25])
    assert np.isnan(m.pit_histogram([np.nan], bins=4)).all()


def test_pit_of_outcomes_from_the_forecast_distribution_is_uniform() -> None:
    rng = np.random.default_rng(1)
    fine = tuple(np.round(np.arange(0.01, 1.0, 0.01), 2))
    y, q = _normal_forecasts(rng, 20_000, fine, 1.0)
    counts = m.pit_histogram(m.pit(y, q, fine), bins=10) * y.size
    chi2 = float(((counts - y.size / 10) ** 2 / (y.size / 10)).sum())
    assert chi2 < CHI2_9DF_999
    # With the seven default levels the density is flat between levels, not normal: bin [0.1, 0.2) holds
    # Phi(q0.1 + (2/3)(q0.25 - q0.1)) - 0.1 = 0.0903 instead of 0.1, so allow that much, no more.
    y, q = _normal_forecasts(rng, 20_000, LEVELS, 1.0)
    shares = m.pit_histogram(m.pit(y, q, LEVELS), bins=10)
    assert np.abs(shares - 0.1).max() < 0.015


def test_a_too_narrow_forecast_is_u_shaped_and_a_too_wide_one_a_hump() -> None:
    rng = np.random.default_rng(2)
    y, q = _normal_forecasts(rng, 20_000, LEVELS, 0.5)
    narrow = m.pit_histogram(m.pit(y, q, LEVELS), bins=10)
    # half the spread: PIT < 0.1 iff y < q0.1, i.e. Z < 0.5 * z(0.1) = -0.64: 0.261 of the mass
    end = N.cdf(0.5 * N.inv_cdf(0.1))  # the same above q0.9; the sampling sd of a share is 0.003
    assert narrow[0] == pytest.approx(end, abs=0.012) and narrow[-1] == pytest.approx(end, abs=0.012)
    assert narrow[3:7].max() < 0.07  # e.g. [0.4, 0.5): Phi(0) - Phi(0.4 * 0.5 * z(0.25)) = 0.054
    y, q = _normal_forecasts(rng, 20_000, LEVELS, 2.0)
    wide = m.pit_histogram(m.pit(y, q, LEVELS), bins=10)
    assert wide[0] < 0.02 and wide[-1] < 0.02 and wide[4] > 0.15 and wide[5] > 0.15


def _frame(rows: list[tuple[str, int, float, int]]) -> pd.DataFrame:
    """(date, horizon, y_true, fold) rows; quantiles median 0 +/- offsets, so the 90% interval is +/- 0.10."""
    offsets = (-0.10, -0.08, -0.04, 0.0, 0.04, 0.08, 0.10)
    out = pd.DataFrame(rows, columns=["date", "horizon", "y_true", "fold"])
    quantiles = {f"q{lv}": off for lv, off in zip(LEVELS, offsets, strict=True)}
    return out.assign(date=pd.to_datetime(out["date"]), ts_code="S", last_close=10.0, **quantiles)


def test_rolling_coverage_pools_the_rows_of_the_last_dates() -> None:
    preds = _frame(
        [
            ("2024-01-02", 1, 0.05, 0),  # in
            ("2024-01-02", 1, 0.20, 0),  # out
            ("2024-01-02", 2, 0.50, 0),  # another horizon: not counted
            ("2024-01-03", 1, -0.10, 0),  # on the bound: in
            ("2024-01-03", 1, np.nan, 0),  # unrealised: not counted
            ("2024-01-04", 1, -0.30, 1),  # out
            ("2024-01-04", 1, 0.11, 1),  # out
        ]
    )
    out = rolling_coverage(preds, LEVELS, window=2)
    assert list(out.columns) == ["date", "coverage", "n", "fold"]
    assert out["date"].dt.day.tolist() == [2, 3, 4] and out["fold"].tolist() == [0, 0, 1]
    # 2 Jan: fewer than 2 dates in; 3 Jan: (1 + 1) / (2 + 1); 4 Jan: (1 + 0) / (1 + 2)
    np.testing.assert_allclose(out["coverage"], [np.nan, 2 / 3, 1 / 3])
    np.testing.assert_allclose(out["n"], [np.nan, 3, 3])
    at_80 = rolling_coverage(preds, LEVELS, mass=0.8, window=1)  # +/- 0.08: -0.10 is now out
    np.testing.assert_allclose(at_80["coverage"], [0.5, 0.0, 0.0])


def test_each_fold_reports_its_coverage_and_kupiec_p(evaluation: Evaluation) -> None:
    preds = evaluation.predictions["lstm"]
    for row in evaluation.report.results["lstm"].per_fold:
        part = preds[(preds["fold"] == row.fold) & (preds["horizon"] == 1)]
        y = part["y_true"].to_numpy()
        below = int((y < part["q0.05"].to_numpy()).sum())
        assert row.metrics["n"] == len(part)
        assert row.metrics["kupiec_p_95"] == pytest.approx(m.kupiec_pof(below, len(part), 0.05)[1])
        inside = (y >= part["q0.25"].to_numpy()) & (y <= part["q0.75"].to_numpy())
        assert row.metrics["coverage_50"] == pytest.approx(inside.mean())
    # fold 0 of lstm: 120 rows with 0 breaches of VaR95 where 6 are expected, so the test rejects there
    assert evaluation.report.results["lstm"].per_fold[0].metrics["kupiec_p_95"] < 0.001


def test_pit_table_has_a_histogram_per_horizon(evaluation: Evaluation) -> None:
    table = pit_table(evaluation.predictions["ewma_vol"], LEVELS, bins=5)
    assert table["horizon"].tolist() == [1] * 5 + [2] * 5
    np.testing.assert_allclose(table.groupby("horizon")["share"].sum(), [1.0, 1.0])


def test_write_artifacts_plots_pit_and_coverage_for_every_name(
    evaluation: Evaluation, tmp_path: Path
) -> None:
    """The artifacts of a hand-made evaluation (no features, no fitted models): every name gets all three."""
    features = FeatureResult(pd.DataFrame(), ["x"], ["label_h1", "label_h2"], Vocab(name="sector", tokens=()))
    eval_cfg = EvalConfig(models=("lstm",), horizon=2, quantiles=LEVELS, baselines=("ewma_vol",))
    run = EvalRun(features, FeatureConfig(horizon=2), eval_cfg, TrainConfig(), [], evaluation)
    parts = write_artifacts(tmp_path, run)
    assert set(parts) == {"evaluation", "plots", "features"}
    names = ["random_walk", "ewma_vol", "lstm", "lstm.seed1"]  # a dot in a name stays in the file name
    for name in names:
        for kind in ("calibration", "pit", "coverage_by_fold"):
            image = matplotlib.image.imread(parts["plots"] / f"{kind}_{name}.png")
            assert image.shape[0] > 200 and image.shape[1] > 400 and image[..., :3].std() > 0.05
    pngs = sorted(p.name for p in parts["plots"].iterdir())
    assert len(pngs) == 3 * len(names) + 3  # and three fan charts of the one model
