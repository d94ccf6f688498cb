"""Volatility baselines: the bar a quant would set before believing any learned forecaster.

All three return (N, H, Q) float32 quantiles of the cumulative raw log return ``y_{t,h}`` (close of t to
close of t+h) for the test samples ``(codes, dates)``, like ``random_walk_quantiles``. They fit on training
rows only (``trade_date`` in ``train``, every label known); a test row's scale uses returns up to and
including its own day t (known at the close of t), never later.

- ``ewma_vol``, filtered historical simulation: sigma_t is the causal RiskMetrics EWMA sd; the forecast is
  ``sigma_t * sqrt(h)`` times the pooled empirical quantiles of the training ``z = y_{t,h} / (sigma_t
  sqrt(h))``, median moved to zero. The industry's default risk model: volatility clustering, fat tails
  taken from the data, no claim about the mean.
- ``garch_t``: GARCH(1,1) with Student-t innovations, fitted per symbol by maximum likelihood (``arch``) on
  its training returns, then filtered forward with the parameters fixed. Adds what EWMA lacks: volatility
  that mean-reverts to a long-run level, so long horizons are not just ``sqrt(h)`` times today.
- ``linear``: exact linear quantile regression (statsmodels ``QuantReg``) of ``z`` on a few causal,
  scale-free features (``LINEAR_FEATURES``). A model must beat it to claim it finds more than vol clustering
  plus short-term momentum/reversal.

Fallbacks: a row whose EWMA sigma_t is NaN (fewer than 20 returns so far) is scaled by the pooled training
sd of the label; ``garch_t`` uses the ``ewma_vol`` forecast for every row of a symbol with fewer than
``min_obs`` training returns or whose fit fails (optimiser not converged, alpha + beta >= 1 or nu <= 2), and
for rows dated before its first training return; ``linear`` uses the ``ewma_vol`` forecast for rows with a
missing feature.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch import arch_model
from scipy import stats
from scipy.signal import lfilter
from statsmodels.regression.quantile_regression import QuantReg
from statsmodels.tools.sm_exceptions import IterationLimitWarning

from stockml.features.volatility import RISKMETRICS_LAMBDA, ewma_volatility
from stockml.training.splits import DateRange

# r_t, the 5- and 20-day return sums over sigma_t; log sigma_t minus its training mean over all rows;
# log(rv20 / sigma_t) with rv20 the root mean square of the last 20 returns. All known at the close of t.
LINEAR_FEATURES = ("intercept", "ret_1", "ret_5", "ret_20", "log_sigma", "log_rv20_ratio")
_BACKCAST_DAYS = 75  # arch's own backcast: EWMA(0.94) mean square of the first 75 residuals


@dataclass(frozen=True)
class _Prepared:
    """The frame sorted by (ts_code, trade_date), per-row sigma_t, labels, train mask, test rows."""

    df: pd.DataFrame
    sigma: np.ndarray  # (n,) EWMA sd of the row's own day (NaN before a symbol's 20th return)
    labels: np.ndarray  # (n, H)
    labelled: np.ndarray  # (n,) bool: in the training window, all labels known
    fit: np.ndarray  # (n,) bool: labelled and sigma_t known, the rows every fit uses
    test: np.ndarray  # (N,) row of df for each test sample, -1 where the frame lacks it
    root_h: np.ndarray  # (H,) sqrt of each label's horizon


@dataclass(frozen=True)
class GarchFit:
    """GARCH(1,1)-t parameters on returns in percent; ``backcast`` starts the variance recursion."""

    omega: float
    alpha: float
    beta: float
    nu: float
    backcast: float

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta


def _prepare(
    frame: pd.DataFrame,
    label_columns: list[str],
    train: DateRange,
    codes: np.ndarray,
    dates: np.ndarray,
    lam: float = RISKMETRICS_LAMBDA,
) -> _Prepared:
    df = frame.assign(
        ts_code=frame["ts_code"].astype(str), trade_date=frame["trade_date"].astype("datetime64[ns]")
    )
    df = df.sort_values(["ts_code", "trade_date"]).reset_index(drop=True)
    panel = df.pivot(index="trade_date", columns="ts_code", values="logret_1").sort_index()
    vol = ewma_volatility(panel, lam).to_numpy()
    sigma = vol[panel.index.get_indexer(df["trade_date"]), panel.columns.get_indexer(df["ts_code"])]
    labels = df[label_columns].to_numpy(np.float64)
    labelled = train.mask(df["trade_date"]) & np.isfinite(labels).all(axis=1)
    keys = pd.MultiIndex.from_arrays([df["ts_code"], df["trade_date"]])
    wanted = pd.MultiIndex.from_arrays(
        [np.asarray(codes).astype(str), pd.DatetimeIndex(dates).astype("datetime64[ns]")]
    )
    root_h = np.sqrt([float(c.removeprefix("label_h")) for c in label_columns])
    fit = labelled & np.isfinite(sigma)
    if not fit.any():
        raise ValueError(f"no training rows with sigma_t and all labels in {train.as_dict()}")
    return _Prepared(df, sigma, labels, labelled, fit, keys.get_indexer(wanted), root_h)


def _take(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]`` with NaN where ``rows`` is -1."""
    out = np.full((len(rows),) + values.shape[1:], np.nan)
    out[rows >= 0] = values[rows[rows >= 0]]
    return out


def _ewma_forecast(p: _Prepared, levels: np.ndarray) -> np.ndarray:
    z = p.labels[p.fit] / (p.sigma[p.fit, None] * p.root_h)  # (n_fit, H)
    q_z = np.quantile(z, levels, axis=0).T - np.median(z, axis=0)[:, None]  # (H, Q)
    sd = np.std(p.labels[p.labelled], axis=0)  # (H,) fallback scale
    s = _take(p.sigma, p.test)
    scale = np.where(np.isfinite(s)[:, None], s[:, None] * p.root_h, sd)  # (N, H)
    return scale[:, :, None] * q_z[None]


def ewma_vol_quantiles(
    frame: pd.DataFrame,
    label_columns: list[str],
    quantiles: tuple[float, ...],
    train: DateRange,
    codes: np.ndarray,
    dates: np.ndarray,
    *,
    lam: float = RISKMETRICS_LAMBDA,
) -> np.ndarray:
    """(N, H, Q) filtered-historical-simulation quantiles: EWMA sigma_t times pooled training z quantiles."""
    p = _prepare(frame, label_columns, train, codes, dates, lam)
    return _ewma_forecast(p, np.asarray(quantiles)).astype(np.float32)


def _backcast(r: np.ndarray) -> float:
    w = 0.94 ** np.arange(min(_BACKCAST_DAYS, len(r)))
    return float(np.dot(w / w.sum(), r[: len(w)] ** 2))


def fit_garch_t(returns: np.ndarray, min_obs: int = 250) -> GarchFit | None:
    """ML fit of GARCH(1,1)-t to daily log returns (scaled to percent); None if too short or the fit fails."""
    r = 100.0 * returns[np.isfinite(returns)]
    if len(r) < min_obs:
        return None
    model = arch_model(r, mean="Zero", vol="GARCH", p=1, q=1, dist="t")
    try:  # no convergence warning: a flagged fit is rejected below
        res = model.fit(disp="off", backcast=_backcast(r), show_warning=False)
    except (ValueError, np.linalg.LinAlgError):
        return None
    omega, alpha, beta, nu = (float(res.params[k]) for k in ("omega", "alpha[1]", "beta[1]", "nu"))
    if res.convergence_flag != 0 or not (omega > 0 and alpha + beta < 1 and nu > 2):
        return None
    return GarchFit(omega, alpha, beta, nu, _backcast(r))


def _garch_variances(fit: GarchFit, r: np.ndarray, horizon: int) -> np.ndarray:
    """(len(r), H) variance forecasts of days i+1..i+H given returns r[:i+1] (percent^2), causal.

    ``s2[i] = omega + alpha r[i-1]^2 + beta s2[i-1]`` started from the backcast as ``arch`` does, so the
    in-sample part equals the fitted model's conditional variance.
    """
    r2 = np.concatenate([[fit.backcast], r**2])  # r[i-1]^2 drives s2[i]
    s2 = lfilter([1.0], [1.0, -fit.beta], fit.omega + fit.alpha * r2, zi=[fit.beta * fit.backcast])[0]
    out = np.empty((len(r), horizon))
    out[:, 0] = s2[1:]  # one step ahead of each origin
    for h in range(1, horizon):
        out[:, h] = fit.omega + fit.persistence * out[:, h - 1]
    return out


def garch_t_quantiles(
    frame: pd.DataFrame,
    label_columns: list[str],
    quantiles: tuple[float, ...],
    train: DateRange,
    codes: np.ndarray,
    dates: np.ndarray,
    *,
    min_obs: int = 250,
) -> np.ndarray:
    """(N, H, Q) GARCH(1,1)-t quantiles of the h-day sum: zero median, sd from the summed variance forecasts.

    Each symbol is fitted on its training-window returns only and filtered from its first training return
    on; the h-day sum is taken as Student-t with the fitted nu (a standard approximation).
    """
    levels = np.asarray(quantiles)
    p = _prepare(frame, label_columns, train, codes, dates)
    out = _ewma_forecast(p, levels)
    steps = np.rint(p.root_h**2).astype(int) - 1  # column of each label in the variance forecasts
    row_code = np.asarray(codes).astype(str)
    row_date = np.asarray(dates, dtype="datetime64[ns]")
    in_train = train.mask(p.df["trade_date"])
    for code, group in p.df.groupby("ts_code", sort=False):
        rows = np.flatnonzero((row_code == code) & (p.test >= 0))
        if len(rows) == 0:
            continue
        own = group[(group["trade_date"] >= train.start) & np.isfinite(group["logret_1"])]
        fit = fit_garch_t(own.loc[in_train[own.index], "logret_1"].to_numpy(np.float64), min_obs)
        if fit is None:
            continue  # ewma_vol forecast already in place
        r = 100.0 * own["logret_1"].to_numpy(np.float64)
        var = np.cumsum(_garch_variances(fit, r, int(steps.max()) + 1), axis=1)  # (n_own, H) h-day sums
        origin = np.searchsorted(own["trade_date"].to_numpy("datetime64[ns]"), row_date[rows], "right") - 1
        rows, origin = rows[origin >= 0], origin[origin >= 0]
        t_q = stats.t.ppf(levels, fit.nu) * np.sqrt((fit.nu - 2.0) / fit.nu)  # unit-variance t quantiles
        out[rows] = np.sqrt(var[origin][:, steps])[:, :, None] / 100.0 * t_q
    return out.astype(np.float32)


def _design(p: _Prepared) -> np.ndarray:
    """(n, K) causal features of ``LINEAR_FEATURES`` per row of ``p.df``, NaN where any is unknown."""
    ok = np.isfinite(p.df["logret_1"].to_numpy(np.float64))
    r = p.df["logret_1"].to_numpy(np.float64)[ok]
    code = p.df["ts_code"].to_numpy()[ok]
    pos = pd.Series(r).groupby(code).cumcount().to_numpy()

    def trailing(values: np.ndarray, k: int) -> np.ndarray:  # sum over the symbol's last k returns up to t
        cs = pd.Series(values).groupby(code).cumsum()
        out = (cs - cs.groupby(code).shift(k).fillna(0.0)).to_numpy(copy=True)
        out[pos < k - 1] = np.nan
        return out

    s = p.sigma[ok]
    x = np.full((len(p.df), len(LINEAR_FEATURES)), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        rv20 = np.sqrt(trailing(r * r, 20) / 20.0)
        x[ok] = np.column_stack(
            [np.ones(len(r)), r / s, trailing(r, 5) / s, trailing(r, 20) / s, np.log(s), np.log(rv20 / s)]
        )
    x[~np.isfinite(x).all(axis=1)] = np.nan
    return x


def _linear_fit(p: _Prepared, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """QuantReg coefficients (H, Q, K) of z on the features, and the centred design (n, K)."""
    x = _design(p)
    rows = p.fit & np.isfinite(x).all(axis=1)
    x[:, LINEAR_FEATURES.index("log_sigma")] -= x[rows, LINEAR_FEATURES.index("log_sigma")].mean()
    z = p.labels[rows] / (p.sigma[rows, None] * p.root_h)  # (n_fit, H)
    with warnings.catch_warnings():
        # IRLS stops on a parameter tolerance; where it hits the limit the coefficients drift along a flat
        # optimum (pinball loss measured within 1e-9 of the exact LP solution), so the fit stands.
        warnings.simplefilter("ignore", IterationLimitWarning)
        coef = np.array(
            [[QuantReg(z[:, h], x[rows]).fit(q=level).params for level in levels] for h in range(z.shape[1])]
        )
    return coef, x


def linear_qr_coefficients(
    frame: pd.DataFrame, label_columns: list[str], quantiles: tuple[float, ...], train: DateRange
) -> np.ndarray:
    """(H, Q, K) coefficients of the ``linear`` baseline on ``LINEAR_FEATURES`` (z units)."""
    p = _prepare(frame, label_columns, train, np.array([], dtype=str), np.array([], dtype="datetime64[ns]"))
    return _linear_fit(p, np.asarray(quantiles))[0]


def linear_qr_quantiles(
    frame: pd.DataFrame,
    label_columns: list[str],
    quantiles: tuple[float, ...],
    train: DateRange,
    codes: np.ndarray,
    dates: np.ndarray,
) -> np.ndarray:
    """(N, H, Q) linear quantile regression of z, times sigma_t sqrt(h); sorted per row (non-crossing)."""
    levels = np.asarray(quantiles)
    p = _prepare(frame, label_columns, train, codes, dates)
    coef, x = _linear_fit(p, levels)
    # (N, K) x (H, Q, K) -> (N, H, Q)
    z_hat = np.sort(np.einsum("nk,hqk->nhq", _take(x, p.test), coef), axis=2)
    out = _take(p.sigma, p.test)[:, None, None] * p.root_h[None, :, None] * z_hat
    missing = ~np.isfinite(out).all(axis=(1, 2))
    out[missing] = _ewma_forecast(p, levels)[missing]
    return out.astype(np.float32)
