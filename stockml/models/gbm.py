"""``lightgbm``: gradient-boosted quantile regression (LightGBM), one booster per horizon and quantile.

It is a :class:`ForecastModel` like the networks, so walk-forward, the bundle, the registry and the pyfunc
treat it the same way; it has no parameters and is fitted in one call on whole datasets (``fits_whole``)
instead of by the gradient trainer. The boosters travel in the state dict as their text dumps
(``get_extra_state``), so ``torch.save(model.state_dict())`` saves them and ``load_state_dict`` restores
them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes


class LightGBMConfig(ModelConfig):
    """LightGBM settings (``use_embeddings``: the symbol enters as a categorical feature)."""

    n_estimators: int = Field(default=400, ge=1)  # the cap; early stopping on the validation block
    learning_rate: float = Field(default=0.03, gt=0.0)
    num_leaves: int = Field(default=15, ge=2)
    min_child_samples: int = Field(default=100, ge=1)
    subsample: float = Field(default=0.8, gt=0.0, le=1.0)  # bagging fraction, every iteration
    colsample: float = Field(default=0.8, gt=0.0, le=1.0)  # feature fraction per tree
    reg_lambda: float = Field(default=1.0, ge=0.0)
    early_stopping: int = Field(default=50, ge=1)  # rounds without validation gain
    lags: tuple[int, ...] = (0,)  # window steps fed as features: 0 = the as-of day, 1 = the day before
    n_jobs: int = Field(default=1, ge=1)  # threads; results are identical for a given count


class LightGBMModel(ForecastModel):
    """Quantile forecasts of the (volatility-standardised) target from the window's last rows.

    Features: ``x[:, -1 - lag, :]`` for each configured lag (the as-of day's features by default) and
    the symbol index (categorical). Per horizon h and level q, a booster with LightGBM's quantile
    objective at ``alpha = q``, early-stopped on the validation block's pinball loss. The Q forecasts
    of a row are sorted, so quantiles never cross. Deterministic for a given seed and ``n_jobs``.

    ``get_last_details()`` is empty; ``feature_importance()`` is the total gain per column of ``x``
    (summed over lags, boosters), normalised to sum to 1.
    """

    config_class = LightGBMConfig
    fits_whole: ClassVar[bool] = True

    def __init__(self, sizes: ModelSizes, config: LightGBMConfig | None = None):
        cfg = config or LightGBMConfig()
        super().__init__(sizes, cfg)
        self.cfg = cfg
        if any(lag < 0 for lag in cfg.lags) or not cfg.lags:
            raise ValueError(f"lags must be >= 0 and not empty, got {cfg.lags}")
        self.dumps: list[list[str]] = []  # [h][q]: each booster's text dump
        self._boosters: list[list[Any]] = []

    @property
    def window_steps(self) -> int:
        """How many of the window's last steps the model reads."""
        return max(self.cfg.lags) + 1

    def _design(self, batch: Batch) -> np.ndarray:
        x = batch["x"].detach().float().cpu().numpy()  # (B, T, F)
        cols = [x[:, x.shape[1] - 1 - lag, :] for lag in self.cfg.lags]
        if self.cfg.use_embeddings:
            cols.append(batch["symbol"].detach().cpu().numpy().astype(np.float64)[:, None])
        return np.concatenate(cols, axis=1).astype(np.float64)

    def _params(self, alpha: float, seed: int) -> dict[str, Any]:
        c = self.cfg
        return {
            "objective": "quantile",
            "alpha": alpha,
            "learning_rate": c.learning_rate,
            "num_leaves": c.num_leaves,
            "min_child_samples": c.min_child_samples,
            "bagging_fraction": c.subsample,
            "bagging_freq": 1 if c.subsample < 1.0 else 0,
            "feature_fraction": c.colsample,
            "lambda_l2": c.reg_lambda,
            "num_threads": c.n_jobs,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def fit_whole(self, train: Batch, valid: Batch | None, seed: int) -> list[dict[str, float]]:
        """Fit every booster on ``train`` (rows with a known target at that horizon), early-stopped on
        ``valid``; returns one history row: the mean validation pinball loss over boosters."""
        import lightgbm as lgb

        x_train, y_train, m_train = self._design(train), train["target"].numpy(), train["mask"].numpy()
        has_valid = valid is not None and bool(valid["mask"].numpy().any())
        if has_valid:
            assert valid is not None
            x_valid, y_valid, m_valid = self._design(valid), valid["target"].numpy(), valid["mask"].numpy()
        categorical = [x_train.shape[1] - 1] if self.cfg.use_embeddings else []
        dumps, boosters, losses, rounds = [], [], [], []
        for h in range(self.sizes.horizon):
            rows = m_train[:, h].astype(bool)
            data = lgb.Dataset(
                x_train[rows], y_train[rows, h], categorical_feature=categorical, free_raw_data=False
            )
            per_q_dumps, per_q = [], []
            for alpha in self.sizes.quantiles:
                callbacks: list[Callable[..., Any]] = []
                valid_sets = []
                if has_valid:
                    keep = m_valid[:, h].astype(bool)
                    valid_sets = [data.create_valid(x_valid[keep], y_valid[keep, h])]
                    callbacks = [lgb.early_stopping(self.cfg.early_stopping, verbose=False)]
                booster = lgb.train(
                    self._params(alpha, seed),
                    data,
                    num_boost_round=self.cfg.n_estimators,
                    valid_sets=valid_sets,
                    callbacks=callbacks,
                )
                if has_valid:
                    losses.append(float(booster.best_score["valid_0"]["quantile"]))
                    rounds.append(booster.best_iteration)
                per_q_dumps.append(booster.model_to_string(num_iteration=booster.best_iteration or None))
                per_q.append(lgb.Booster(model_str=per_q_dumps[-1]))
            dumps.append(per_q_dumps)
            boosters.append(per_q)
        self.dumps, self._boosters = dumps, boosters
        return [
            {
                "epoch": 0,
                "train_loss": math.nan,
                **(
                    {"valid_loss": float(np.mean(losses)), "rounds": float(np.mean(rounds))} if losses else {}
                ),
            }
        ]

    def forward(self, batch: Batch) -> Tensor:
        if not self._boosters:
            raise RuntimeError("lightgbm model is not fitted (fit_whole) or loaded (load_state_dict)")
        design = self._design(batch)
        out = np.stack(
            [np.stack([b.predict(design) for b in per_q], axis=-1) for per_q in self._boosters], axis=1
        )  # H x Q x (B,) -> (B, H, Q)
        out.sort(axis=-1)
        x = batch["x"]
        return torch.from_numpy(out.astype(np.float32)).to(x.device)

    def feature_importance(self) -> Tensor:
        """Total split gain per column of ``x`` (summed over lags and boosters), summing to 1."""
        n = self.sizes.n_features
        gain = np.zeros(n)
        for per_q in self._boosters:
            for booster in per_q:
                g = booster.feature_importance(importance_type="gain")
                gain += g[: n * len(self.cfg.lags)].reshape(len(self.cfg.lags), n).sum(axis=0)
        return torch.from_numpy(gain / gain.sum() if gain.sum() > 0 else gain)

    def start_at_quantiles(self, values: Tensor) -> int:
        return 0  # no heads: the boosters start at their own initial score

    def get_extra_state(self) -> dict[str, Any]:
        return {"dumps": self.dumps}

    def set_extra_state(self, state: Any) -> None:
        import lightgbm as lgb

        self.dumps = [list(per_q) for per_q in state["dumps"]]
        self._boosters = [[lgb.Booster(model_str=d) for d in per_q] for per_q in self.dumps]
