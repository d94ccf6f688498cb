"""Volatility features against hand computations on small panels of known returns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockml.features import FeatureConfig
from stockml.features.returns import RET_1D, adjust_prices, return_features
from stockml.features.vol_features import volatility_features
from stockml.features.volatility import SIGMA_FLOOR, ewma_volatility

CONFIG = FeatureConfig(ewma_lambda=0.9, ewma_seed_days=10)  # not the defaults: the fields are wired


def _bars(returns: dict[str, np.ndarray], start: dict[str, str], pct_chg: bool = True) -> pd.DataFrame:
    """Bars whose one-day log returns are ``returns``; without ``pct_chg`` the first return is missing
    (only adj_factor is left, and it needs the previous row)."""
    frames = []
    for code, r in returns.items():
        close = 10.0 * np.exp(np.cumsum(r))
        frame = pd.DataFrame(
            {
                "ts_code": code,
                "trade_date": pd.bdate_range(start[code], periods=len(r)).astype("datetime64[ns]"),
                "open": close,
                "high": close * 1.01,
                "low": close * 0.99,
                "close": close,
                "vol": 1e5,
                "amount": 1e6,
            }
        )
        frames.append(frame.assign(pct_chg=np.expm1(r) * 100.0) if pct_chg else frame)
    return pd.concat(frames, ignore_index=True)


def _random_prices(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Two symbols of different lengths and start dates: the panel pads the shorter one after its end.
    returns = {"A.SH": rng.normal(0, 0.02, 140), "B.SZ": rng.standard_t(3, 95) * 0.01}
    return adjust_prices(_bars(returns, {"A.SH": "2022-01-03", "B.SZ": "2022-03-01"}))


def _per_symbol(prices: pd.DataFrame, feats: pd.DataFrame) -> list[tuple[np.ndarray, pd.DataFrame]]:
    return [
        (prices.loc[rows, RET_1D].to_numpy(), feats.loc[rows])
        for rows in prices.groupby("ts_code").groups.values()
    ]


def test_vol_ewma_is_the_causal_ewma_sigma_and_its_log() -> None:
    prices = _random_prices()
    feats = volatility_features(prices, CONFIG)
    for r, f in _per_symbol(prices, feats):
        expected = ewma_volatility(pd.DataFrame({0: r}), lam=0.9, seed_days=10)[0].to_numpy()
        np.testing.assert_allclose(f["vol_ewma"], expected, rtol=1e-12, equal_nan=True)
        # By hand: seeded with the mean square of the first 10 returns, then one RiskMetrics step.
        seed_var = np.mean(r[:10] ** 2)
        assert f["vol_ewma"].iloc[9] == pytest.approx(np.sqrt(seed_var), rel=1e-12)
        assert f["vol_ewma"].iloc[10] == pytest.approx(np.sqrt(0.9 * seed_var + 0.1 * r[10] ** 2), rel=1e-12)
        assert f["vol_ewma"].iloc[:9].isna().all()
        np.testing.assert_allclose(f["vol_ewma_log_xs"], np.log(f["vol_ewma"]), rtol=1e-12, equal_nan=True)


def test_ret_1_std_divides_by_the_sigma_of_the_day_before() -> None:
    prices = _random_prices(1)
    feats = volatility_features(prices, CONFIG)
    for r, f in _per_symbol(prices, feats):
        sigma = f["vol_ewma"].to_numpy()
        np.testing.assert_allclose(f["ret_1_std"].iloc[10:], r[10:] / sigma[9:-1], rtol=1e-12)
        assert f["ret_1_std"].iloc[:10].isna().all()  # sigma of day 9 is the first there is
        # Not today's sigma: that one already contains r_t.
        assert not np.allclose(f["ret_1_std"].iloc[10:], r[10:] / sigma[10:])


def test_downside_vol_and_vol_of_vol_by_hand() -> None:
    prices = _random_prices(2)
    feats = volatility_features(prices, CONFIG)
    for r, f in _per_symbol(prices, feats):
        downside = [np.sqrt(np.mean(np.minimum(r[t - 19 : t + 1], 0.0) ** 2)) for t in range(19, len(r))]
        np.testing.assert_allclose(f["downside_vol_20"].iloc[19:], downside, rtol=1e-12)
        assert f["downside_vol_20"].iloc[:19].isna().all()
        rv5 = np.array([np.std(r[t - 4 : t + 1], ddof=1) if t >= 4 else np.nan for t in range(len(r))])
        log_rv = np.log(np.maximum(rv5, SIGMA_FLOOR))
        vov = [np.std(log_rv[t - 59 : t + 1], ddof=1) for t in range(63, len(r))]
        np.testing.assert_allclose(f["vol_of_vol_60"].iloc[63:], vov, rtol=1e-10)
        assert f["vol_of_vol_60"].iloc[:63].isna().all()


def test_known_series_give_known_values() -> None:
    n = 100
    alternating = np.where(np.arange(n) % 2 == 0, 0.01, -0.02)
    flat = np.zeros(n)  # e.g. a price held still: every estimate stays finite thanks to the floor
    prices = adjust_prices(
        _bars({"A.SH": alternating, "F.SH": flat}, {"A.SH": "2023-01-02", "F.SH": "2023-01-02"})
    )
    feats = volatility_features(prices, FeatureConfig())
    alt, fl = (
        feats.loc[prices["ts_code"] == code].iloc[FeatureConfig().warmup :] for code in ("A.SH", "F.SH")
    )
    # Ten -2% days in every 20: sqrt(10 * 0.02**2 / 20).
    np.testing.assert_allclose(alt["downside_vol_20"], np.sqrt(10 * 0.02**2 / 20), rtol=1e-9)
    # Every 5-day window of the alternation holds 0.01 and -0.02 three and two times (either way round):
    # the same rv_5 every day, so its log does not vary.
    np.testing.assert_allclose(alt["vol_of_vol_60"], 0.0, atol=1e-10)
    np.testing.assert_allclose(fl["vol_ewma"], SIGMA_FLOOR, rtol=1e-12)
    assert (fl["downside_vol_20"] == 0).all()
    np.testing.assert_allclose(fl["vol_of_vol_60"], 0.0, atol=1e-12)
    assert (fl["ret_1_std"] == 0).all()
    assert np.isfinite(fl["vol_ewma_log_xs"]).all()


def test_warmup_covers_every_vol_feature_when_the_first_return_is_missing() -> None:
    rng = np.random.default_rng(3)
    bars = _bars({"A.SH": rng.normal(0, 0.02, 90)}, {"A.SH": "2023-01-02"}, pct_chg=False)
    adj = bars[["ts_code", "trade_date"]].assign(adj_factor=1.0)
    prices = adjust_prices(bars, adj)
    assert np.isnan(prices[RET_1D].iloc[0])
    config = FeatureConfig()
    assert config.warmup >= max(config.vol_windows) + 1 and config.warmup == 65
    feats = pd.concat([volatility_features(prices, config), return_features(prices, config)], axis=1)
    after = feats.iloc[config.warmup :]
    assert np.isfinite(after.to_numpy()).all()
    assert (after["vol_ewma"] > 0).all()
    assert feats["vol_of_vol_60"].iloc[:64].isna().all()  # rv_5 from row 5, then 60 of them
    assert feats["rv_60"].iloc[:60].isna().all() and np.isfinite(feats["rv_60"].iloc[60])


def test_vol_features_do_not_mutate_and_are_causal() -> None:
    prices = _random_prices(4)
    copy = prices.copy()
    full = volatility_features(prices, CONFIG)
    pd.testing.assert_frame_equal(prices, copy)
    cut = prices["trade_date"] <= pd.Timestamp("2022-04-15")
    short = volatility_features(prices.loc[cut].reset_index(drop=True), CONFIG)
    pd.testing.assert_frame_equal(full.loc[cut].reset_index(drop=True), short, check_exact=True)
