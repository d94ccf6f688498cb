"""Fitting an ``ensemble``: every member as it would be fitted alone, then the weights on validation only.

``stack`` weights: per quantile level q, the member weights ``w >= 0, sum w = 1`` that minimise the pinball
loss of ``sum_m w_m * member_m`` at level q over the validation block's rows and horizons (model scale, so
volatile rows do not dominate), an exact linear programme (HiGHS), then pulled towards equal weights by the
config's ``shrink``. Without a validation block (a refit on
all data) the weights are kept as they are: equal for a new ensemble; the registry's refit then carries the
last fold's weights over (:func:`carry_weights`).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy import sparse
from scipy.optimize import linprog

from stockml.models.ensemble import EnsembleModel, member_spec
from stockml.training.config import TrainConfig
from stockml.training.trainer import TrainResult, predict, train_model
from stockml.training.windows import WindowDataset


def stacking_weights(forecasts: np.ndarray, target: np.ndarray, level: float) -> np.ndarray:
    """Simplex weights ``(M,)`` minimising the mean pinball loss at ``level`` of ``forecasts (M, n) @ w``
    against ``target (n,)``: min ``sum(level * u + (1 - level) * v)`` s.t. ``F' w + u - v = y``."""
    m, n = forecasts.shape
    cost = np.concatenate([np.zeros(m), np.full(n, level), np.full(n, 1.0 - level)]) / n
    eye = sparse.identity(n, format="csr")
    simplex = sparse.csr_matrix(np.concatenate([np.ones(m), np.zeros(2 * n)])[None])
    a_eq = sparse.vstack([sparse.hstack([sparse.csr_matrix(forecasts.T), eye, -eye]), simplex], format="csr")
    b_eq = np.concatenate([target, [1.0]])
    res = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if not res.success:
        raise RuntimeError(f"stacking LP failed at level {level}: {res.message}")
    w = np.clip(res.x[:m], 0.0, None)
    return w / w.sum()


def last_dates(ds: WindowDataset, days: int | None) -> WindowDataset:
    """``ds`` cut to the samples of its last ``days`` dates (all of it for None)."""
    if days is None:
        return ds
    sample_days = ds.arrays.day[ds.rows]
    unique = np.unique(sample_days)
    if len(unique) <= days:
        return ds
    return WindowDataset(ds.arrays, ds.rows[sample_days >= unique[-days]], ds.lookback)


def fit_ensemble(
    model: EnsembleModel, train: WindowDataset, valid: WindowDataset | None, cfg: TrainConfig
) -> TrainResult:
    """Fit each member with ``cfg`` (member i seeded ``cfg.seed + i``, on its window of ``train``), then the
    weights on ``valid``."""
    began = time.perf_counter()
    history: list[dict[str, float]] = []
    for i, name in enumerate(model.cfg.members):
        window = last_dates(train, member_spec(name)[1])
        result = train_model(model.member(name), window, valid, cfg.model_copy(update={"seed": cfg.seed + i}))
        history.extend({"member": float(i), **row} for row in result.history)
    use_valid = valid is not None and len(valid) > 0 and not cfg.full_train
    if use_valid and model.cfg.combine == "stack":
        assert valid is not None
        preds = [predict(model.member(n), valid) for n in model.cfg.members]  # (N, H, Q) each
        order = preds[0][1]
        target = valid.arrays.target[valid.rows[order]]  # (N, H), model scale
        known = np.isfinite(target)
        weights = np.stack(
            [
                stacking_weights(np.stack([p[0][:, :, j][known] for p in preds]), target[known], level)
                for j, level in enumerate(model.sizes.quantiles)
            ],
            axis=1,
        )  # (M, Q)
        shrink = model.cfg.shrink
        weights = (1.0 - shrink) * weights + shrink / len(model.cfg.members)
        model.weights.copy_(torch.from_numpy(weights).to(model.weights))
    model.eval()
    return TrainResult(history, len(history) - 1, float("nan"), time.perf_counter() - began)


def carry_weights(refit: object, fitted: object) -> None:
    """A refit on all data has no validation block: it keeps the weights the walk-forward's last fold
    learned (``fitted``), when both are ensembles of the same members."""
    if (
        isinstance(refit, EnsembleModel)
        and isinstance(fitted, EnsembleModel)
        and refit.cfg.members == fitted.cfg.members
    ):
        refit.weights.copy_(fitted.weights)
