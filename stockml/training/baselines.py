"""Baselines, evaluated on exactly the folds, rows and targets of the models, always in the report.

Every baseline is a pure function ``(frame, label_columns, quantiles, train, codes, dates) -> (N, H, Q)``
raw log-return quantiles for the test samples ``(codes, dates)``, fitted on the rows dated in ``train``:

``random_walk``: median zero return; the other quantiles are the symbol's empirical h-day return
quantiles over the training window, centred on zero (global ones for symbols unseen in training). Skill
is defined against it.
``ewma_vol``, ``garch_t``, ``linear``: see :mod:`stockml.training.vol_baselines`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from stockml.training.splits import DateRange
from stockml.training.vol_baselines import ewma_vol_quantiles, garch_t_quantiles, linear_qr_quantiles

# (frame, label_columns, quantiles, train window, test codes, test dates) -> (N, H, Q)
Baseline = Callable[
    [pd.DataFrame, list[str], tuple[float, ...], DateRange, np.ndarray, np.ndarray], np.ndarray
]


def random_walk_quantiles(
    train_labels: pd.DataFrame, label_columns: list[str], quantiles: Sequence[float], codes: np.ndarray
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


def _random_walk(
    frame: pd.DataFrame,
    label_columns: list[str],
    quantiles: tuple[float, ...],
    train: DateRange,
    codes: np.ndarray,
    dates: np.ndarray,
) -> np.ndarray:
    in_train = train.mask(frame["trade_date"].to_numpy())
    train_labels = frame.loc[in_train, ["ts_code", *label_columns]]
    return random_walk_quantiles(train_labels, label_columns, quantiles, codes)


BASELINES: dict[str, Baseline] = {
    "random_walk": _random_walk,
    "ewma_vol": ewma_vol_quantiles,
    "garch_t": garch_t_quantiles,
    "linear": linear_qr_quantiles,
}
