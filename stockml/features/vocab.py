"""Persisted vocabularies (symbol -> index, sector -> index) with index 0 reserved for unknown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from stockml.features.json_file import read_model_json, write_model_json

UNKNOWN = 0
VOCAB_VERSION = 1


class Vocab(BaseModel):
    """``tokens[i]`` has index ``i + 1``; anything else (including null) encodes to 0."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    tokens: tuple[str, ...]
    version: int = VOCAB_VERSION
    # The window the vocabulary was fitted on (None for static metadata such as industries).
    fit_start: dt.date | None = None
    fit_end: dt.date | None = None

    @property
    def size(self) -> int:
        """Embedding table size, unknown included."""
        return len(self.tokens) + 1

    def encode(self, values: Iterable[object] | pd.Series) -> np.ndarray:
        """Values -> int64 indices; unseen or null values -> 0."""
        lookup = pd.Index(self.tokens)
        series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
        codes = lookup.get_indexer(series.astype(object).where(series.notna(), None))
        return (codes + 1).astype(np.int64)  # get_indexer gives -1 for unknown -> 0

    def decode(self, indices: Iterable[int]) -> list[str | None]:
        return [self.tokens[i - 1] if 0 < i <= len(self.tokens) else None for i in indices]

    def save(self, path: Path) -> Path:
        return write_model_json(self, path)

    @classmethod
    def load(cls, path: Path) -> Vocab:
        return read_model_json(cls, path, VOCAB_VERSION, "vocabulary")


def fit_vocab(
    values: Iterable[object] | pd.Series,
    name: str,
    fit_start: dt.date | None = None,
    fit_end: dt.date | None = None,
) -> Vocab:
    """Sorted distinct non-null values; record the window they came from."""
    series = pd.Series(values, dtype=object).dropna()
    tokens = tuple(sorted({str(v) for v in series if str(v) != ""}))
    return Vocab(name=name, tokens=tokens, fit_start=fit_start, fit_end=fit_end)


def fit_symbol_vocab(frame: pd.DataFrame, start: dt.date | None, end: dt.date | None) -> Vocab:
    """Symbols with at least one row dated in [start, end], the training window."""
    dates = frame["trade_date"]
    inside = pd.Series(True, index=frame.index)
    if start is not None:
        inside &= dates >= pd.Timestamp(start)
    if end is not None:
        inside &= dates <= pd.Timestamp(end)
    return fit_vocab(frame.loc[inside, "ts_code"].unique(), "symbol", start, end)


def fit_sector_vocab(stock_basic: pd.DataFrame | None) -> Vocab:
    """Industries named in ``stock_basic``: static classification, so no fit window."""
    values = stock_basic["industry"] if stock_basic is not None and "industry" in stock_basic else []
    return fit_vocab(values, "sector")
