"""Naive baselines, evaluated on exactly the folds and targets of the models.

``random_walk``: median zero return; the other quantiles are the symbol's empirical h-day return
quantiles over the training window, centred on zero (global ones for symbols unseen in training).
``linear``: a linear quantile model on the last day's (normalised) features, fitted with the same
trainer and pinball loss as the models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch import Tensor

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead

BASELINES = ("random_walk", "linear")


class LinearQuantileModel(ForecastModel):
    """Quantiles as a linear function of the window's last feature row (non-crossing by construction)."""

    config_class = ModelConfig

    def __init__(self, sizes: ModelSizes, config: ModelConfig | None = None):
        super().__init__(sizes, config)
        self.head = QuantileHead(sizes.n_features, sizes.horizon, sizes.quantiles)

    def forward(self, batch: Batch) -> Tensor:
        return self.head(batch["x"][:, -1])  # (B, T, F) -> (B, F) -> (B, H, Q)


def random_walk_quantiles(
    train_labels: pd.DataFrame, label_columns: list[str], quantiles: tuple[float, ...], codes: np.ndarray
) -> np.ndarray:
    """(N, H, Q) raw log-return quantiles for the symbols ``codes``, from training-window labels only.

    ``train_labels`` holds ``ts_code`` and the label columns of training rows.
    """
    levels = np.asarray(quantiles)

    def centred(values: np.ndarray) -> np.ndarray:  # (n, H) -> (H, Q), median moved to zero
        q = np.nanquantile(values, levels, axis=0).T
        return q - np.nanmedian(values, axis=0)[:, None]

    global_q = centred(train_labels[label_columns].to_numpy(np.float64))
    per_symbol = {
        str(code): centred(group[label_columns].to_numpy(np.float64))
        for code, group in train_labels.groupby("ts_code", sort=False)
        if group[label_columns].notna().all(axis=1).sum() >= 20
    }
    return np.stack([per_symbol.get(str(c), global_q) for c in codes]).astype(np.float32)
