"""A long frame sorted by (ts_code, trade_date) <-> a left-aligned (rows, symbols) panel.

Column ``s`` of the panel holds symbol ``s``'s own trading days in order, padded with NaN after its
last row. Rolling and EWM operations then run over all symbols at once (pandas does the columns in C),
each symbol over its own trading days, and padding only ever follows the real rows, so it cannot
reach back into them: every operation stays causal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockml.columns import TRADE_DATE, TS_CODE


@dataclass(frozen=True)
class PanelIndex:
    """Where each row of a sorted long frame lives in the panel."""

    sym: np.ndarray  # (n,) int, symbol column of each row
    pos: np.ndarray  # (n,) int, position of the row within its symbol
    n_rows: int  # panel height: the longest symbol
    n_syms: int

    def to_panel(self, values: pd.Series | np.ndarray) -> pd.DataFrame:
        """Long values (n,) -> panel (n_rows, n_syms) of float64, NaN where a symbol has no row."""
        out = np.full((self.n_rows, self.n_syms), np.nan)
        out[self.pos, self.sym] = np.asarray(values, dtype=np.float64)
        return pd.DataFrame(out)

    def to_long(self, panel: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Panel (n_rows, n_syms) -> long values (n,) in the frame's row order."""
        return np.asarray(panel, dtype=np.float64)[self.pos, self.sym]


def sort_long(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy sorted by (ts_code, trade_date) with a fresh RangeIndex."""
    return frame.sort_values([TS_CODE, TRADE_DATE], kind="stable").reset_index(drop=True)


def panel_index(frame: pd.DataFrame) -> PanelIndex:
    """Index of a frame already sorted by (ts_code, trade_date) (see :func:`sort_long`)."""
    codes, uniques = pd.factorize(frame[TS_CODE], sort=True)
    sym = codes.astype(np.int64)
    # Rows of a symbol are contiguous: position = row number - first row of the symbol.
    starts = np.r_[0, np.flatnonzero(np.diff(sym)) + 1]
    lengths = np.diff(np.r_[starts, len(sym)])
    pos = np.arange(len(sym)) - np.repeat(starts, lengths)
    n_rows = int(lengths.max()) if len(lengths) else 0
    return PanelIndex(sym=sym, pos=pos, n_rows=n_rows, n_syms=len(uniques))
