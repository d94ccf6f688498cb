"""Time splits: no training label reaches into a later segment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockml.training.splits import DateRange, Segments, check_gap, walk_forward_folds


def trading_days(n: int, seed: int) -> pd.DatetimeIndex:
    days = pd.bdate_range("2020-01-01", periods=int(n * 1.1))
    keep = np.random.default_rng(seed).random(len(days)) > 0.08  # holidays
    return days[keep][:n]


def pos(days: pd.DatetimeIndex, day: pd.Timestamp) -> int:
    return int(days.get_loc(day))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(60, 500),
    seed=st.integers(0, 100),
    n_folds=st.integers(1, 4),
    test_days=st.integers(5, 40),
    horizon=st.integers(1, 10),
    mode=st.sampled_from(["expanding", "sliding"]),
    min_train_days=st.integers(10, 120),
    valid_days=st.sampled_from([0, 15]),
)
def test_walk_forward_labels_never_overlap_later_segments(
    n: int,
    seed: int,
    n_folds: int,
    test_days: int,
    horizon: int,
    mode: str,
    min_train_days: int,
    valid_days: int,
) -> None:
    days = trading_days(n, seed)
    room = len(days) - n_folds * test_days - horizon - (valid_days + horizon if valid_days else 0)
    if room < min_train_days:
        with pytest.raises(ValueError, match="training days"):
            walk_forward_folds(days, n_folds, test_days, horizon, mode, min_train_days, valid_days)  # type: ignore[arg-type]
        return
    folds = walk_forward_folds(days, n_folds, test_days, horizon, mode, min_train_days, valid_days)  # type: ignore[arg-type]
    assert len(folds) == n_folds and folds[-1].test.end == days[-1]
    for k, fold in enumerate(folds):
        segments = [fold.train, *([fold.valid] if valid_days else []), fold.test]
        for earlier, later in zip(segments, segments[1:], strict=False):
            # The last sample of `earlier` has labels on days pos+1 .. pos+H, all before `later` starts.
            assert pos(days, earlier.end) + horizon < pos(days, later.start)
            assert pos(days, later.start) - pos(days, earlier.end) - 1 == horizon  # no day wasted either
        train_len = pos(days, fold.train.end) - pos(days, fold.train.start) + 1
        assert train_len >= min_train_days
        assert (
            mode == "expanding"
            and fold.train.start == days[0]
            or mode == "sliding"
            and train_len == min_train_days
        )
        assert pos(days, fold.test.end) - pos(days, fold.test.start) + 1 == test_days
        if k:
            assert pos(days, folds[k - 1].test.end) + 1 == pos(days, fold.test.start)
        fold.segments.check(days, horizon)


def test_segments_from_fractions_leave_label_gaps() -> None:
    days = trading_days(300, 1)
    seg = Segments.from_fractions(days, horizon=5, train=0.6, valid=0.2)
    assert seg.train.start == days[0] and seg.test is not None and seg.test.end == days[-1]
    assert seg.valid is not None
    assert pos(days, seg.valid.start) - pos(days, seg.train.end) - 1 == 5
    assert pos(days, seg.test.start) - pos(days, seg.valid.end) - 1 == 5
    assert seg.check(days, 5) is seg
    with pytest.raises(ValueError, match="need 6"):
        seg.check(days, 6)
    with pytest.raises(ValueError, match="too few"):
        Segments.from_fractions(days[:10], horizon=5)


def test_check_gap_counts_trading_days_not_calendar_days() -> None:
    days = pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-01-10", "2024-01-11", "2024-01-12"])
    train, test = DateRange(days[0], days[1]), DateRange(days[4], days[4])
    check_gap(days, train, test, horizon=2)  # 2024-01-10 and -11 lie between
    with pytest.raises(ValueError, match="2 trading day"):
        check_gap(days, train, test, horizon=3)
    assert DateRange(days[1], days[3]).mask(days).tolist() == [False, True, True, True, False]
    with pytest.raises(ValueError, match="empty range"):
        DateRange(days[2], days[1])
