"""Lookback windows as array views: one (rows, F) float32 matrix, samples are slices of it.

Rows are sorted by (ts_code, trade_date); sample ``i`` is ``x[i - T + 1 : i + 1]``. A sample is valid
when its whole lookback lies within one symbol (and by default within the split), and, for
training, all H labels are known. Batches are gathered with one fancy index, no per-sample pandas.

Batch keys: ``x`` (B, T, F) float32, ``symbol`` / ``sector`` (B,) int64 vocabulary indices,
``target`` (B, H) float32 (0 where unknown), ``mask`` (B, H) bool (label known), ``date`` (B,) int64
days since 1970-01-01, ``ts_code`` list[str]. Move tensors with :func:`to_device` (it skips
``ts_code``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from stockml.columns import TRADE_DATE, TS_CODE
from stockml.features.exogenous import SECTOR_ID
from stockml.features.frame_schema import split_columns
from stockml.features.normalizer import (
    NormParams,
    inverse_target,
    target_scales,
    transform_features,
    transform_target,
)
from stockml.features.panel import panel_index, sort_long
from stockml.features.vocab import Vocab
from stockml.models.base import Batch
from stockml.training.splits import DateRange


@dataclass(frozen=True)
class WindowArrays:
    """The whole feature frame as arrays, rows sorted by (ts_code, trade_date)."""

    x: np.ndarray  # (n, F) float32, normalised
    target: np.ndarray  # (n, H) float32, model scale, NaN where unknown
    scale: np.ndarray  # (n, H) float64, raw label = target * scale (see target_scales)
    symbol: np.ndarray  # (n,) int64
    sector: np.ndarray  # (n,) int64
    date: np.ndarray  # (n,) datetime64[ns]
    ts_code: np.ndarray  # (n,) str
    pos: np.ndarray  # (n,) int64, row number within the symbol
    day: np.ndarray  # (n,) int64, days since 1970-01-01
    feature_columns: list[str]

    def to_raw(self, scaled: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Model-scale quantiles ``(N, H, Q)`` of rows ``rows`` -> raw log-return quantiles."""
        return inverse_target(np.asarray(scaled, np.float64), self.scale[rows], quantiles=True)


def build_window_arrays(
    frame: pd.DataFrame, norm: NormParams, symbol_vocab: Vocab, features: list[str] | None = None
) -> WindowArrays:
    """Normalise ``x`` with ``norm`` (checking the feature list), encode symbols, keep labels apart."""
    frame = sort_long(frame)
    found, labels = split_columns(frame)
    features = features if features is not None else found
    norm.check_features(features)
    labels = norm.label_columns or labels
    scale = target_scales(frame, norm)
    target = transform_target(frame[labels].to_numpy(np.float64), scale)
    return WindowArrays(
        x=transform_features(frame, norm, features),
        target=target.astype(np.float32),
        scale=scale,
        symbol=symbol_vocab.encode(frame[TS_CODE]),
        sector=frame[SECTOR_ID].to_numpy(np.int64),
        date=frame[TRADE_DATE].to_numpy("datetime64[ns]"),
        ts_code=frame[TS_CODE].to_numpy(str),
        pos=panel_index(frame).pos,
        day=frame[TRADE_DATE].to_numpy("datetime64[ns]").astype("datetime64[D]").astype(np.int64),
        feature_columns=list(features),
    )


def sample_rows(
    arrays: WindowArrays,
    lookback: int,
    segment: DateRange | None = None,
    require_target: bool = True,
    history_before_start: bool = False,
) -> np.ndarray:
    """Row indices of valid samples: full lookback inside one symbol, a finite target scale, dated in
    ``segment``, and (by default) the lookback also inside it; with ``require_target`` all H labels known."""
    ok = (arrays.pos >= lookback - 1) & np.isfinite(arrays.scale).all(axis=1)  # no scale, no forecast
    if segment is not None:
        ok &= segment.mask(arrays.date)
        if not history_before_start:
            first = np.clip(np.arange(len(ok)) - (lookback - 1), 0, None)
            ok &= arrays.date[first] >= segment.start.to_datetime64()
    if require_target:
        ok &= np.isfinite(arrays.target).all(axis=1)
    return np.flatnonzero(ok)


def to_device(batch: Batch, device: torch.device | str) -> Batch:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class WindowDataset(Dataset):
    """Samples of one split. ``ds[i]`` is one sample; ``ds.get_batch(idx)`` or ``ds[idx_array]`` a batch."""

    def __init__(self, arrays: WindowArrays, rows: np.ndarray, lookback: int):
        self.arrays, self.rows, self.lookback = arrays, np.asarray(rows, dtype=np.int64), lookback
        self._offsets = np.arange(-lookback + 1, 1, dtype=np.int64)

    @classmethod
    def for_segment(
        cls, arrays: WindowArrays, lookback: int, segment: DateRange | None = None, **kwargs: bool
    ) -> WindowDataset:
        return cls(arrays, sample_rows(arrays, lookback, segment, **kwargs), lookback)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int | Sequence[int] | np.ndarray) -> Batch:
        if isinstance(index, int | np.integer):
            batch = self.get_batch(np.array([index]))
            return {k: v[0] for k, v in batch.items()}
        return self.get_batch(np.asarray(index))

    def get_batch(self, indices: np.ndarray) -> Batch:
        """Samples ``indices`` (positions in this dataset) as one batch."""
        a = self.arrays
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        window = rows[:, None] + self._offsets  # (B,) -> (B, T) row numbers
        target = a.target[rows]
        known = np.isfinite(target)
        return {
            "x": torch.from_numpy(a.x[window]),  # (B, T, F)
            "symbol": torch.from_numpy(a.symbol[rows]),
            "sector": torch.from_numpy(a.sector[rows]),
            "target": torch.from_numpy(np.where(known, target, 0.0).astype(np.float32)),
            "mask": torch.from_numpy(known),
            "date": torch.from_numpy(a.day[rows]),
            "ts_code": a.ts_code[rows].tolist(),
        }

    def iter_batches(
        self, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False
    ) -> Iterator[Batch]:
        """Batches in order, or shuffled by a generator seeded with ``seed`` (same seed, same order)."""
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        stop = len(order) - len(order) % batch_size if drop_last else len(order)
        for lo in range(0, stop, batch_size):
            yield self.get_batch(order[lo : lo + batch_size])
