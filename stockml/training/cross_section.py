"""Cross-sectional batches for graph models: every symbol of a date in one batch item.

Nodes are all symbols of the arrays, in ts_code order. Batch keys: ``x`` (B, N, T, F), ``target``
(B, N, H) (0 where unknown), ``mask`` (B, N, H) label known and node present, ``node_mask`` (B, N)
symbol has a valid sample that day, ``symbol`` / ``sector`` (B, N), ``date`` (B,) int64 days since
1970-01-01, ``ts_code`` list of the N codes. Absent nodes carry zeros.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from stockml.models.base import Batch
from stockml.training.splits import DateRange
from stockml.training.windows import WindowArrays, sample_rows


class CrossSectionDataset:
    """One item per date of the split; ``get_batch(date_indices)`` gathers B dates at once."""

    def __init__(
        self,
        arrays: WindowArrays,
        lookback: int,
        segment: DateRange | None = None,
        require_target: bool = True,
        history_before_start: bool = False,
    ):
        self.arrays, self.lookback = arrays, lookback
        rows = sample_rows(arrays, lookback, segment, require_target, history_before_start)
        self.ts_codes, node = np.unique(arrays.ts_code, return_inverse=True)
        self.days, day = np.unique(arrays.day[rows], return_inverse=True)
        # (D, N) row of each (date, symbol) sample, -1 where the symbol has none that day.
        self.grid = np.full((len(self.days), len(self.ts_codes)), -1, dtype=np.int64)
        self.grid[day, node[rows]] = rows
        self._offsets = np.arange(-lookback + 1, 1, dtype=np.int64)
        self._fill = int(rows[0]) if len(rows) else 0  # any valid row; its values are zeroed

    @property
    def n_nodes(self) -> int:
        return len(self.ts_codes)

    def __len__(self) -> int:
        return len(self.days)

    def get_batch(self, indices: np.ndarray) -> Batch:
        a = self.arrays
        rows = self.grid[np.asarray(indices, dtype=np.int64)]  # (B, N)
        present = rows >= 0
        safe = np.where(present, rows, self._fill)
        x = a.x[safe[..., None] + self._offsets]  # (B, N) -> (B, N, T, F)
        x[~present] = 0.0
        target = a.target[safe]  # (B, N, H)
        known = np.isfinite(target) & present[..., None]
        return {
            "x": torch.from_numpy(x),
            "target": torch.from_numpy(np.where(known, target, 0.0).astype(np.float32)),
            "mask": torch.from_numpy(known),
            "node_mask": torch.from_numpy(present),
            "symbol": torch.from_numpy(np.where(present, a.symbol[safe], 0)),
            "sector": torch.from_numpy(np.where(present, a.sector[safe], 0)),
            "date": torch.from_numpy(self.days[np.asarray(indices, dtype=np.int64)]),
            "ts_code": self.ts_codes.tolist(),
        }

    def iter_batches(self, batch_size: int = 1, shuffle: bool = False, seed: int = 0) -> Iterator[Batch]:
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        for lo in range(0, len(order), batch_size):
            yield self.get_batch(order[lo : lo + batch_size])
