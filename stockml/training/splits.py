"""Time splits: named segments and walk-forward folds, with a gap of H trading days.

A sample dated t carries labels over trading days t+1 .. t+H. Between the last day of a segment and the
first day of the next one lie at least H trading days, so the last training label ends before the
first day of the next segment and no label overlaps a later segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DateRange:
    """Inclusive date range."""

    start: pd.Timestamp
    end: pd.Timestamp

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"empty range: {self.start.date()} .. {self.end.date()}")

    def mask(self, dates: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
        values = np.asarray(dates, dtype="datetime64[ns]")
        return (values >= self.start.to_datetime64()) & (values <= self.end.to_datetime64())

    def as_dict(self) -> dict[str, str]:
        return {"start": str(self.start.date()), "end": str(self.end.date())}


def _days(dates: Sequence[object] | pd.Series | pd.DatetimeIndex | np.ndarray) -> pd.DatetimeIndex:
    days = pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(dates).astype("datetime64[ns]"))).sort_values()
    if days.empty:
        raise ValueError("no trading dates given")
    return days


def _range(days: pd.DatetimeIndex, lo: int, hi: int) -> DateRange:
    return DateRange(days[lo], days[hi])


def check_gap(
    dates: Sequence[object] | pd.DatetimeIndex, earlier: DateRange, later: DateRange, horizon: int
) -> None:
    """Raise unless at least ``horizon`` trading days of ``dates`` lie strictly between the two ranges."""
    days = _days(dates)
    end_i = int(days.searchsorted(earlier.end, side="right")) - 1
    start_i = int(days.searchsorted(later.start, side="left"))
    between = start_i - end_i - 1
    if between < horizon:
        raise ValueError(
            f"{earlier.end.date()} -> {later.start.date()}: {between} trading day(s) apart, need {horizon} "
            "so that labels of the earlier segment end before the later one starts"
        )


@dataclass(frozen=True)
class Segments:
    """Named train / valid / test date ranges, in that order, separated by label gaps."""

    train: DateRange
    valid: DateRange | None = None
    test: DateRange | None = None

    def items(self) -> list[tuple[str, DateRange]]:
        return [(n, r) for n, r in (("train", self.train), ("valid", self.valid), ("test", self.test)) if r]

    def check(self, dates: Sequence[object] | pd.DatetimeIndex, horizon: int) -> Segments:
        """Raise if consecutive segments are closer than ``horizon`` trading days; return self."""
        ranges = [r for _, r in self.items()]
        for earlier, later in zip(ranges, ranges[1:], strict=False):
            check_gap(dates, earlier, later, horizon)
        return self

    @classmethod
    def from_fractions(
        cls, dates: Sequence[object] | pd.DatetimeIndex, horizon: int, train: float = 0.7, valid: float = 0.15
    ) -> Segments:
        """Split the trading days by fractions; the gaps come out of the later segment; test is the rest."""
        days = _days(dates)
        n = len(days)
        train_end = int(n * train) - 1
        valid_start = train_end + horizon + 1
        valid_end = valid_start + int(n * valid) - 1
        test_start = valid_end + horizon + 1
        if train_end < 0 or valid_end < valid_start or test_start > n - 1:
            raise ValueError(
                f"{n} trading days are too few for fractions {train}/{valid} with gaps of {horizon}"
            )
        return cls(
            _range(days, 0, train_end), _range(days, valid_start, valid_end), _range(days, test_start, n - 1)
        )


@dataclass(frozen=True)
class Fold:
    index: int
    train: DateRange
    test: DateRange
    valid: DateRange | None = None

    @property
    def segments(self) -> Segments:
        return Segments(self.train, self.valid, self.test)


def walk_forward_folds(
    dates: Sequence[object] | pd.DatetimeIndex,
    n_folds: int,
    test_days: int,
    horizon: int,
    mode: Literal["expanding", "sliding"] = "expanding",
    min_train_days: int = 250,
    valid_days: int = 0,
    train_days: int | None = None,
) -> list[Fold]:
    """Consecutive test blocks of ``test_days`` ending at the last date, oldest fold first.

    Each fold trains on everything before its test block (``expanding``) or on the last ``train_days``
    (default ``min_train_days``) before it (``sliding``), leaving ``horizon`` trading days before the
    test block (and before an optional ``valid_days`` validation block). Raises if a fold would train
    on fewer than ``min_train_days``.
    """
    if n_folds < 1 or test_days < 1 or min_train_days < 1:
        raise ValueError(
            f"n_folds, test_days, min_train_days must be >= 1, got {n_folds}, {test_days}, {min_train_days}"
        )
    days = _days(dates)
    n = len(days)
    window = train_days if train_days is not None else min_train_days
    folds = []
    for k in range(n_folds):
        test_start = n - (n_folds - k) * test_days
        valid = None
        train_end = test_start - horizon - 1
        if valid_days > 0:
            valid_end = train_end
            valid = (
                _range(days, valid_end - valid_days + 1, valid_end)
                if valid_end - valid_days + 1 >= 0
                else None
            )
            train_end = valid_end - valid_days - horizon
        train_start = 0 if mode == "expanding" else max(0, train_end - window + 1)
        if train_end - train_start + 1 < min_train_days or valid_days > 0 and valid is None:
            raise ValueError(
                f"fold {k}: {max(train_end - train_start + 1, 0)} training days before "
                f"{days[max(test_start, 0)].date()}, need {min_train_days} "
                f"(n_folds={n_folds}, test_days={test_days})"
            )
        folds.append(
            Fold(
                k,
                _range(days, train_start, train_end),
                _range(days, test_start, test_start + test_days - 1),
                valid,
            )
        )
    return folds
