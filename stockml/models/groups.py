"""Symbol groups from the co-movement of returns on a training window (pure: arrays in, a tuple out).

Used by ``hybrid21`` with ``group_by="correlation"``: symbols whose returns moved together on the
fold's training dates share a group encoder. Average-linkage hierarchical clustering (scipy) on the
distance ``1 - corr`` of the symbols' daily returns, cut into at most ``n_groups`` clusters.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

MIN_OVERLAP = 60  # days two symbols must share for their correlation to count


class _Arrays(Protocol):
    symbol: np.ndarray
    day: np.ndarray
    target: np.ndarray


class TrainingWindows(Protocol):
    """What a model may read of its training windows to fit its config (a ``WindowDataset``)."""

    arrays: _Arrays
    rows: np.ndarray

    def __len__(self) -> int: ...


def correlation_groups(
    symbol: np.ndarray, day: np.ndarray, returns: np.ndarray, vocab_size: int, n_groups: int
) -> tuple[int, ...]:
    """Group of every symbol id ``0 .. vocab_size - 1`` (``1 .. n_groups``; 0: unknown, too little data),
    from rows ``(symbol (N,), day (N,), returns (N,))`` of the training window. A pair with fewer than
    :data:`MIN_OVERLAP` common days counts as uncorrelated; a symbol with fewer days than that is 0."""
    frame = pd.DataFrame({"symbol": symbol, "day": day, "r": returns}).dropna()
    wide = frame.pivot_table(index="day", columns="symbol", values="r", aggfunc="mean")
    wide = wide.loc[:, wide.notna().sum() >= MIN_OVERLAP]
    groups = np.zeros(vocab_size, dtype=np.int64)
    ids = wide.columns.to_numpy(dtype=np.int64)
    if len(ids) == 1:
        groups[ids] = 1
    if len(ids) >= 2:
        corr = wide.corr(min_periods=MIN_OVERLAP).fillna(0.0).to_numpy()
        distance = np.clip(1.0 - corr, 0.0, 2.0)
        np.fill_diagonal(distance, 0.0)
        tree = linkage(squareform(distance, checks=False), method="average")
        groups[ids] = fcluster(tree, t=min(n_groups, len(ids)), criterion="maxclust")
    return tuple(int(g) for g in groups)
