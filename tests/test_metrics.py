"""Evaluation metrics against hand-computed values: every number below is worked out in the comments."""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockml.evaluation import metrics as m
from stockml.evaluation.aggregate import (
    information_coefficients,
    metrics_by_horizon,
    metrics_for,
    quantile_columns,
    skill,
)

N = NormalDist()
LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
OFFSETS = (-0.10, -0.08, -0.04, 0.0, 0.04, 0.08, 0.10)  # a fixed predicted band around the median


def frame(y: list[float], median: list[float], **cols: list) -> pd.DataFrame:
    """A prediction frame with the default levels: quantiles = median + OFFSETS."""
    n = len(y)
    base = {
        "ts_code": cols.pop("ts_code", [f"S{i}" for i in range(n)]),
        "date": pd.to_datetime(cols.pop("date", ["2024-01-02"] * n)),
        "horizon": cols.pop("horizon", [1] * n),
        "y_true": y,
        "last_close": cols.pop("last_close", [10.0] * n),
    }
    quantiles = {f"q{lv}": [md + off for md in median] for lv, off in zip(LEVELS, OFFSETS, strict=True)}
    return pd.DataFrame(base | quantiles)


# --- point metrics ---------------------------------------------------------------------------------


def test_price_errors_on_reconstructed_prices() -> None:
    close = [10.0, 20.0]
    actual = m.reconstruct_price(close, [math.log(1.1), math.log(0.9)])  # 11, 18
    predicted = m.reconstruct_price(close, [0.0, math.log(1.05)])  # 10, 21
    np.testing.assert_allclose(actual, [11.0, 18.0])
    # errors 1 and -3
    assert m.rmse(actual, predicted) == pytest.approx(math.sqrt((1 + 9) / 2))
    assert m.mae(actual, predicted) == pytest.approx(2.0)
    assert m.mape(actual, predicted) == pytest.approx((1 / 11 + 3 / 18) / 2)  # 0.128788


def test_direction_accuracy_leaves_out_rows_without_a_direction() -> None:
    y = [0.1, -0.2, 0.0, 0.3, 0.0, -0.1]
    point = [0.2, 0.1, 0.0, 0.0, 0.5, -0.3]
    # hit, miss, (0 vs 0: no call), (0 forecast: no call), (flat day: no direction), hit
    assert m.direction_accuracy(y, point) == pytest.approx(2 / 3)
    assert math.isnan(m.direction_accuracy(y, [0.0] * 6)), "a constant zero forecast has no direction"


def test_empty_inputs_give_nan_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(m.rmse([], []))
        assert math.isnan(m.mae([], []))
        assert math.isnan(m.direction_accuracy([], []))
        assert math.isnan(m.crps_from_quantiles(np.empty(0), np.empty((0, 3)), [0.1, 0.5, 0.9]))


# --- quantile scores -------------------------------------------------------------------------------


def test_pinball_elementwise() -> None:
    # tau = 0.9: y - q = 1 -> 0.9 * 1; y - q = -1 -> (0.9 - 1) * -1 = 0.1
    np.testing.assert_allclose(m.pinball([1.0, -1.0], [0.0, 0.0], 0.9), [0.9, 0.1])


def test_pinball_by_level_and_crps() -> None:
    levels = [0.1, 0.5, 0.9]
    q = [[-0.1, 0.0, 0.1], [-0.1, 0.0, 0.1]]
    y = [0.0, 0.1]
    # y = 0:   y - q = (0.1, 0, -0.1)  -> (0.1*0.1, 0, 0.1*0.1) = (0.01, 0, 0.01)
    # y = 0.1: y - q = (0.2, 0.1, 0)   -> (0.1*0.2, 0.5*0.1, 0) = (0.02, 0.05, 0)
    np.testing.assert_allclose(m.pinball_by_level(y, q, levels), [0.015, 0.025, 0.005])
    assert m.crps_from_quantiles(y, q, levels) == pytest.approx(2 * 0.015)


def test_crps_from_many_quantiles_matches_normal_closed_form() -> None:
    mu, sigma, y = 0.01, 0.02, 0.016
    z = (y - mu) / sigma
    closed = sigma * (z * (2 * N.cdf(z) - 1) + 2 * N.pdf(z) - 1 / math.sqrt(math.pi))
    levels = [(i + 0.5) / 100 for i in range(100)]
    q = np.array([[mu + sigma * N.inv_cdf(lv) for lv in levels]])
    assert m.crps_from_quantiles([y], q, levels) == pytest.approx(closed, rel=1e-3)


# --- quantile function -----------------------------------------------------------------------------


def test_quantile_at_interpolates_and_extrapolates_a_normal_tail() -> None:
    levels = [0.1, 0.5, 0.9]
    q = [[-0.2, 0.0, 0.4]]
    assert m.quantile_at(q, levels, 0.1)[0] == pytest.approx(-0.2)  # given level: exact
    # 0.25 is 0.15 / 0.4 = 0.375 of the way from 0.1 to 0.5: -0.2 + 0.375 * 0.2
    assert m.quantile_at(q, levels, 0.25)[0] == pytest.approx(-0.125)
    assert m.quantile_at(q, levels, 0.7)[0] == pytest.approx(0.2)  # halfway from 0 to 0.4
    # below 0.1: m + (q_0.1 - m) * z(0.05) / z(0.1) = -0.2 * 1.644854 / 1.281552
    assert m.quantile_at(q, levels, 0.05)[0] == pytest.approx(-0.2 * 1.644854 / 1.281552, rel=1e-6)
    # above 0.9, from the upper edge: 0.4 * z(0.99) / z(0.9) = 0.4 * 2.326348 / 1.281552
    assert m.quantile_at(q, levels, 0.99)[0] == pytest.approx(0.4 * 2.326348 / 1.281552, rel=1e-6)


def test_quantile_at_rejects_levels_on_one_side_of_the_median() -> None:
    with pytest.raises(ValueError, match="0.5"):
        m.quantile_at([[0.0, 0.1]], [0.5, 0.9], 0.05)


@given(
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=7, max_size=7),
    st.lists(st.floats(0.001, 0.999), min_size=2, max_size=10),
)
def test_quantile_at_is_monotone_in_the_level(values: list[float], targets: list[float]) -> None:
    q = np.array([sorted(values)])
    got = [m.quantile_at(q, LEVELS, lv)[0] for lv in sorted(targets)]
    assert all(b >= a - 1e-12 for a, b in zip(got, got[1:], strict=False))


def test_expected_shortfall_from_the_normal_tail() -> None:
    # Default levels, lowest = alpha = 0.05: ES = m + (q_0.05 - m) * phi(z) / (alpha * z), z = 1.644854,
    # phi(z) = 0.103136 -> factor 0.103136 / (0.05 * 1.644854) = 1.254040
    q = [[0.01 + off for off in OFFSETS]]  # q_0.05 = -0.09
    assert m.expected_shortfall(q, LEVELS, 0.05)[0] == pytest.approx(0.01 - 0.10 * 1.254040, rel=1e-5)
    # Exact normal quantiles give the normal ES, mu - sigma * phi(z) / alpha
    normal = [[0.01 + 0.02 * N.inv_cdf(lv) for lv in LEVELS]]
    expected = 0.01 - 0.02 * N.pdf(N.inv_cdf(0.05)) / 0.05
    assert m.expected_shortfall(normal, LEVELS, 0.05)[0] == pytest.approx(expected, rel=1e-9)


def test_expected_shortfall_with_levels_below_alpha() -> None:
    levels = [0.01, 0.05, 0.5, 0.95]
    q = [[-0.05, -0.03, 0.0, 0.03]]
    # tail below 0.01: sigma = -0.05 / z(0.01) = 0.05 / 2.326348; integral = 0 * 0.01 - sigma * phi(2.326348)
    sigma = 0.05 / 2.326348
    tail = -sigma * N.pdf(2.326348)  # -0.00057284
    linear = 0.04 * (-0.05 - 0.03) / 2  # trapezoid from 0.01 to 0.05: -0.0016
    assert m.expected_shortfall(q, levels, 0.05)[0] == pytest.approx((tail + linear) / 0.05, rel=1e-5)


# --- intervals, VaR, Kupiec ------------------------------------------------------------------------


def test_coverage_and_width() -> None:
    y = [0.0, 0.5, -2.0, 3.0]
    lower, upper = [-1.0, 0.0, -2.0, 0.0], [1.0, 1.0, 0.0, 2.0]
    assert m.coverage(y, lower, upper) == pytest.approx(3 / 4)  # -2 on the bound counts; 3 > 2 misses
    assert m.mean_width(lower, upper) == pytest.approx((2 + 1 + 2 + 2) / 4)


def test_central_interval_uses_the_symmetric_pair() -> None:
    q = [[0.01 + off for off in OFFSETS]]
    lo, hi = m.central_interval(q, LEVELS, 0.9)  # q_0.05, q_0.95
    assert (lo[0], hi[0]) == pytest.approx((-0.09, 0.11))
    lo, hi = m.central_interval(q, LEVELS, 0.6)  # q_0.2, q_0.8: interpolated, 0.2 = 0.1 + 2/3 * 0.15
    assert (lo[0], hi[0]) == pytest.approx((0.01 - 0.08 + (2 / 3) * 0.04, 0.01 + 0.04 + (1 / 3) * 0.04))


def test_breaches_and_realised_shortfall() -> None:
    y, var = [-0.05, -0.01, 0.02, -0.08, -0.03], [-0.03] * 5
    np.testing.assert_array_equal(m.breaches(y, var), [1, 0, 0, 1, 0])  # -0.03 itself is no breach
    assert m.realised_shortfall(y, var) == pytest.approx((-0.05 - 0.08) / 2)
    assert math.isnan(m.realised_shortfall([0.1], [-0.03]))


def test_kupiec_known_value() -> None:
    # n = 250, x = 5, p = 0.01:
    # -2 [245 ln 0.99 + 5 ln 0.01] = -2 [-2.46233 - 23.02585] = 50.97636
    # +2 [245 ln 0.98 + 5 ln 0.02] = +2 [-4.94966 - 19.56012] = -49.01956  -> LR = 1.95681, p = 0.16185
    lr, p = m.kupiec_pof(5, 250, 0.01)
    assert lr == pytest.approx(1.956810, abs=1e-5)
    assert p == pytest.approx(0.161855, abs=1e-5)


def test_kupiec_edges() -> None:
    # x = 0: only the null term, LR = -2 * 250 ln 0.99 = 5.025168; chi2(1) sf = 0.024982
    lr, p = m.kupiec_pof(0, 250, 0.01)
    assert (lr, p) == pytest.approx((5.025168, 0.024982), abs=1e-5)
    # x = n: LR = -2 * 4 ln 0.05 = 23.965858
    assert m.kupiec_pof(4, 4, 0.05)[0] == pytest.approx(-8 * math.log(0.05))
    # x / n = p exactly: LR = 0, p-value 1
    assert m.kupiec_pof(1, 100, 0.01) == pytest.approx((0.0, 1.0))
    assert all(math.isnan(v) for v in m.kupiec_pof(0, 0, 0.05))


# --- information coefficients ----------------------------------------------------------------------


def ic_frame(preds: list[list[float]], ys: list[list[float]], by_date: bool) -> pd.DataFrame:
    """Groups of rows: one group per date (symbols S0..) or per symbol (dates 2024-01-01..)."""
    rows = []
    for g, (ps, ys_) in enumerate(zip(preds, ys, strict=True)):
        for i, (p, y) in enumerate(zip(ps, ys_, strict=True)):
            code, day = (f"S{i}", g) if by_date else (f"S{g}", i)
            rows.append(
                {
                    "ts_code": code,
                    "date": pd.Timestamp("2024-01-01") + pd.Timedelta(days=day),
                    "pred": p,
                    "y_true": y,
                }
            )
    return pd.DataFrame(rows)


def test_ic_per_date_with_icir() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    ys = [[1, 2, 3, 4, 5], [5, 4, 3, 2, 1], [1, 2, 3, 5, 4]]
    # corr: 1, -1 and (x-3).(y-3) / 10 = (4 + 1 + 0 + 2 + 2) / 10 = 0.9; ranks equal values: same for Spearman
    # mean 0.3; sample std sqrt((0.49 + 1.69 + 0.36) / 2) = 1.126943 -> ICIR 0.266207
    res = information_coefficients(ic_frame([x] * 3, ys, by_date=True), "pred")
    assert res.by == "date" and res.n_groups == 3
    assert (res.ic, res.rank_ic) == pytest.approx((0.3, 0.3))
    assert (res.icir, res.rank_icir) == pytest.approx((0.266207, 0.266207), abs=1e-6)


def test_rank_ic_uses_average_ranks_for_ties() -> None:
    pred, y = [[1.0, 1.0, 2.0, 3.0, 4.0]], [[1.0, 2.0, 3.0, 4.0, 5.0]]
    # Pearson: pred - 2.2 = (-1.2, -1.2, -0.2, 0.8, 1.8); sxy = 8.0, sxx = 6.8, syy = 10 -> 8 / sqrt(68)
    # Spearman: ranks (1.5, 1.5, 3, 4, 5) - 3 = (-1.5, -1.5, 0, 1, 2); sxy = 9.5, sxx = 9.5 -> 9.5 / sqrt(95)
    res = information_coefficients(ic_frame(pred, y, by_date=True), "pred")
    assert res.ic == pytest.approx(8 / math.sqrt(68))
    assert res.rank_ic == pytest.approx(9.5 / math.sqrt(95))
    assert math.isnan(res.icir)  # one date: no spread of ICs


def test_ic_falls_back_to_per_symbol_with_few_symbols() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    ys = [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 6, 5]]
    # two symbols, so every date has 2 < 5 symbols: one IC per symbol over time
    # symbol 1: 1; symbol 2: (x-3.5).(y-3.5) / 17.5 = (6.25 + 2.25 + 0.25 + 0.25 + 3.75 + 3.75) / 17.5
    #                                                = 16.5 / 17.5
    res = information_coefficients(ic_frame([x] * 2, ys, by_date=False), "pred")
    assert res.by == "ts_code" and res.n_groups == 2
    second = 16.5 / 17.5
    assert res.ic == pytest.approx((1 + second) / 2)
    assert res.icir == pytest.approx(((1 + second) / 2) / ((1 - second) / math.sqrt(2)))


def test_ic_switch_at_five_symbols() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    five = ic_frame([x] * 2, [[1, 2, 3, 4, 5], [1, 2, 3, 5, 4]], by_date=True)
    assert information_coefficients(five, "pred").by == "date"
    four = five[five["ts_code"] != "S4"]  # 4 symbols, 2 dates: per symbol, but 2 rows < 5 each
    res = information_coefficients(four, "pred")
    assert res.by == "ts_code" and res.n_groups == 0 and math.isnan(res.ic)


def test_ic_is_nan_for_constant_predictions_without_warnings() -> None:
    frame_ = ic_frame([[0.0] * 5] * 3, [[1, 2, 3, 4, 5]] * 3, by_date=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = information_coefficients(frame_, "pred")
    assert res.n_groups == 0
    assert all(math.isnan(v) for v in (res.ic, res.rank_ic, res.icir, res.rank_icir))


# --- the report ------------------------------------------------------------------------------------


def test_metrics_for_hand_computed() -> None:
    y = [0.0, 0.05, -0.12, 0.12, math.nan]  # the last row is unrealised: dropped
    preds = frame(y, [0.0] * 5)  # every median 0: band -0.10 .. 0.10
    out = metrics_for(preds)
    assert out["n"] == 4
    price_true = 10 * np.exp(np.array(y[:4]))
    assert out["rmse"] == pytest.approx(math.sqrt(np.mean((price_true - 10) ** 2)))
    assert out["mape"] == pytest.approx(np.mean(np.abs(price_true - 10) / price_true))
    assert math.isnan(out["direction_accuracy"])  # every median is 0: no direction to score
    assert math.isnan(out["ic"])  # 4 symbols with one row each: no group reaches 5 rows
    # q0.05 = -0.10: y - q = (0.10, 0.15, -0.02, 0.22) -> (0.005, 0.0075, 0.95 * 0.02, 0.011) / 4
    assert out["pinball_q0.05"] == pytest.approx((0.005 + 0.0075 + 0.019 + 0.011) / 4)
    assert out["pinball_q0.5"] == pytest.approx(0.5 * (0 + 0.05 + 0.12 + 0.12) / 4)
    assert out["crps"] == pytest.approx(2 * out["pinball"])
    assert out["coverage_50"] == pytest.approx(1 / 4)  # [-0.04, 0.04]: only 0
    assert out["coverage_80"] == pytest.approx(2 / 4)  # [-0.08, 0.08]: 0, 0.05
    assert out["coverage_90"] == pytest.approx(2 / 4)  # [-0.10, 0.10]: 0, 0.05
    assert out["width_90"] == pytest.approx(0.20)
    assert out["var95_breach_rate"] == pytest.approx(1 / 4)  # -0.12 < -0.10
    assert out["var99_breach_rate"] == 0.0  # VaR99 = -0.10 * 1.414319 = -0.1414
    lr95 = -2 * (3 * math.log(0.95) + math.log(0.05)) + 2 * (3 * math.log(0.75) + math.log(0.25))
    assert out["kupiec_p_95"] == pytest.approx(math.erfc(math.sqrt(lr95 / 2)))
    assert out["kupiec_p_99"] == pytest.approx(math.erfc(math.sqrt(-8 * math.log(0.99) / 2)))
    assert out["cvar95_pred"] == pytest.approx(-0.10 * 1.254040, rel=1e-5)
    assert out["cvar95_realised"] == pytest.approx(-0.12)


def test_metrics_for_empty_frame_is_nan_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = metrics_for(frame([math.nan, math.nan], [0.0, 0.0]))
    assert out["n"] == 0
    assert all(math.isnan(v) for k, v in out.items() if k != "n")


def test_metrics_by_horizon() -> None:
    preds = frame([0.01, -0.02, 0.03], [0.01, 0.01, 0.01], horizon=[2, 1, 2])
    by_h = metrics_by_horizon(preds)
    assert list(by_h) == [1, 2]
    assert (by_h[1]["n"], by_h[2]["n"]) == (1, 2)
    assert by_h[1]["direction_accuracy"] == 0.0 and by_h[2]["direction_accuracy"] == 1.0


def test_quantile_columns_parse_levels() -> None:
    preds = frame([0.0], [0.0]).assign(quality=1.0)
    assert list(quantile_columns(preds)) == list(LEVELS)
    assert quantile_columns(preds, [0.9, 0.1, 0.5]) == {0.1: "q0.1", 0.5: "q0.5", 0.9: "q0.9"}
    with pytest.raises(ValueError, match="0.01"):
        quantile_columns(preds, [0.01, 0.5])


def test_skill_against_random_walk() -> None:
    got = skill({"rmse": 0.8, "crps": 0.03}, {"rmse": 1.0, "crps": 0.04})
    assert got == pytest.approx({"skill_rmse": 0.2, "skill_crps": 0.25})  # 1 - 0.8, 1 - 0.75
    undefined = skill({"rmse": 0.8}, {"rmse": 0.0, "crps": 0.04})
    assert math.isnan(undefined["skill_rmse"]) and math.isnan(undefined["skill_crps"])


def test_newey_west_t_by_hand() -> None:
    from stockml.evaluation.aggregate import newey_west_t

    # x = 1, 3, 2, 4: mean 2.5, gamma0 = 5/4, gamma1 = -1.75/4, Bartlett weight 1/2 * 2 = 1
    assert newey_west_t(np.array([1.0, 3.0, 2.0, 4.0]), 0) == pytest.approx(2.5 / np.sqrt(1.25 / 4))
    assert newey_west_t(np.array([1.0, 3.0, 2.0, 4.0]), 1) == pytest.approx(2.5 / np.sqrt(0.8125 / 4))
    assert np.isnan(newey_west_t(np.array([1.0, 2.0]), 0))


def test_crps_rows_and_skill_t() -> None:
    from stockml.evaluation.aggregate import crps_rows, crps_skill_t

    dates = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])
    model = pd.DataFrame({"ts_code": "A", "date": dates, "horizon": 1, "y_true": 0.0})
    model = model.assign(**{"q0.25": -1.0, "q0.5": 0.0, "q0.75": 1.0})
    # pinball at y=0: 0.25, 0, 0.25 -> mean 1/6 -> CRPS 1/3
    assert crps_rows(model).tolist() == pytest.approx([1 / 3] * 3)
    wider = model.assign(**{"q0.25": [-2.0, -3.0, -4.0], "q0.75": [2.0, 3.0, 4.0]})  # CRPS 2/3, 1, 4/3
    # gains 1/3, 2/3, 1: mean 2/3, sd of the mean sqrt((2/9) / 3 / 3) -> t = 3 * sqrt(2)
    assert crps_skill_t(model, wider, horizon=1) == pytest.approx(3 * np.sqrt(2))
    assert crps_skill_t(wider, model, horizon=1) == pytest.approx(-3 * np.sqrt(2))


def test_prob_up_inverts_the_forecast_cdf_at_zero() -> None:
    levels = [0.05, 0.25, 0.5, 0.75, 0.95]
    q = np.array(
        [
            [-0.02, -0.01, 0.0, 0.01, 0.02],  # median 0: no view
            [-0.01, 0.0, 0.01, 0.02, 0.03],  # 0 is the 0.25 quantile
            [-0.03, -0.02, -0.005, 0.005, 0.01],  # 0 halfway between the 0.5 and 0.75 quantiles
            [0.01, 0.02, 0.03, 0.04, 0.05],  # 0 below every quantile: the normal tail
        ]
    )
    p = m.prob_up(q, levels)
    np.testing.assert_allclose(p[:3], [0.5, 0.75, 0.375])
    # tail: median 0.03, sigma from the 0.05 quantile: (0.03 - 0.01) / 1.6449; P(up) = Phi(0.03 / sigma)
    sigma = 0.02 / NormalDist().inv_cdf(0.95)
    assert p[3] == pytest.approx(NormalDist().cdf(0.03 / sigma))


def test_brier_and_hit_rate_by_hand() -> None:
    p, up = np.array([0.9, 0.6, 0.5, 0.2]), np.array([True, False, True, False])
    assert m.brier(p, up) == pytest.approx((0.01 + 0.36 + 0.25 + 0.04) / 4)
    assert m.hit_rate(p, up) == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert m.brier(np.full(4, 0.5), up) == 0.25 and m.hit_rate(np.full(4, 0.5), up) == 0.5
