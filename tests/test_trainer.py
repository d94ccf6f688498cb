"""The trainer: early stopping stops, the best checkpoint is restored, full_train runs every epoch."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest
import torch

from stockml.losses import build_loss
from stockml.models import ModelSizes, build_model
from stockml.training.config import TrainConfig
from stockml.training.trainer import batches, mean_loss, n_batches, predict, train_model
from stockml.training.windows import WindowArrays, WindowDataset

T, F, H = 8, 3, 2


def _dataset(n: int, seed: int, signal: bool) -> WindowDataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, F)).astype(np.float32)
    target = np.stack(
        [x[:, 0] * (1.0 if signal else 0.0) + 0.1 * rng.normal(size=n) for _ in range(H)], axis=1
    )
    if not signal:
        target = rng.normal(size=(n, H))
    dates = pd.bdate_range("2020-01-01", periods=n).to_numpy("datetime64[ns]")
    arrays = WindowArrays(
        x=x,
        target=target.astype(np.float32),
        scale=np.ones((n, H)),
        symbol=np.ones(n, np.int64),
        sector=np.ones(n, np.int64),
        date=dates,
        ts_code=np.array(["000001.SZ"] * n),
        pos=np.arange(n),
        day=dates.astype("datetime64[D]").astype(np.int64),
        feature_columns=[f"f{i}" for i in range(F)],
    )
    return WindowDataset(arrays, np.arange(T - 1, n), T)


def _model(seed: int = 0):
    torch.manual_seed(seed)
    sizes = ModelSizes(n_features=F, horizon=H, n_symbols=2, n_sectors=2)
    return build_model("lstm", sizes, {"hidden_size": 8})


def test_early_stopping_restores_the_best_epoch() -> None:
    train, valid = _dataset(400, 0, signal=False), _dataset(200, 1, signal=False)  # nothing to learn
    model = _model()
    cfg = TrainConfig(max_epochs=30, batch_size=64, patience=2, lr=1e-2, seed=3, progress=False)
    result = train_model(model, train, valid, cfg)
    assert result.stopped_early and len(result.history) < 30
    assert len(result.history) == result.best_epoch + 1 + cfg.patience
    best = min(row["valid_loss"] for row in result.history)
    assert result.best_valid == best
    criterion = build_loss("pinball", model.sizes.quantiles)
    assert (
        mean_loss(model, valid, criterion, cfg) == torch.tensor(best).item()
        or abs(mean_loss(model, valid, criterion, cfg) - best) < 1e-6
    )


def test_full_train_runs_every_epoch_and_learns() -> None:
    train = _dataset(400, 0, signal=True)
    model = _model()
    cfg = TrainConfig(max_epochs=6, batch_size=64, lr=1e-2, full_train=True, seed=3, progress=False)
    result = train_model(model, train, _dataset(100, 1, signal=True), cfg)
    assert len(result.history) == 6 and not result.stopped_early
    assert all("valid_loss" not in row for row in result.history)
    assert result.history[-1]["train_loss"] < 0.85 * result.history[0]["train_loss"]


def test_same_seed_same_model() -> None:
    train = _dataset(200, 0, signal=True)
    cfg = TrainConfig(max_epochs=2, batch_size=32, seed=5, progress=False)
    a, b = _model(), _model()
    train_model(a, train, None, cfg)
    train_model(b, train, None, cfg)
    pa, _ = predict(a, train)
    pb, _ = predict(b, train)
    np.testing.assert_array_equal(pa, pb)


def test_date_batches_pack_whole_dates() -> None:
    """By date, whole dates are packed into batches of about batch_size rows: 3 symbols x 40 dates in
    batches of 10 rows -> 3 dates (9 rows) per batch, 14 batches, every row once, no date split."""
    one = _dataset(47, 0, signal=False)  # 40 samples of one symbol
    a = one.arrays
    arrays = WindowArrays(
        x=np.tile(a.x, (3, 1)),
        target=np.tile(a.target, (3, 1)),
        scale=np.tile(a.scale, (3, 1)),
        symbol=np.repeat([1, 2, 3], 47),
        sector=np.ones(141, np.int64),
        date=np.tile(a.date, 3),
        ts_code=np.repeat(["000001.SZ", "000002.SZ", "600000.SH"], 47),
        pos=np.tile(a.pos, 3),
        day=np.tile(a.day, 3),
        feature_columns=a.feature_columns,
    )
    ds = WindowDataset(arrays, np.concatenate([one.rows + 47 * k for k in range(3)]), T)
    assert n_batches(ds, 10, by_date=True) == 14 and n_batches(ds, 10, by_date=False) == 12
    seen = []
    for batch in batches(ds, 10, by_date=True, shuffle=True, seed=1):
        days, counts = np.unique(batch["date"].numpy(), return_counts=True)
        assert (counts == 3).all() and len(days) <= 3
        seen.extend(days.tolist())
    assert sorted(seen) == sorted(np.unique(a.day[one.rows]).tolist())


def test_each_epoch_logs_a_progress_line_with_time_left(caplog: pytest.LogCaptureFixture) -> None:
    """Without a terminal (no bar), a long command still says what it does: one line per epoch."""
    caplog.set_level(logging.INFO, logger="stockml")
    train_model(_model(), _dataset(200, 0, signal=True), None, TrainConfig(max_epochs=3, progress=False))
    lines = [r.getMessage() for r in caplog.records if r.name == "stockml.training.trainer"]
    assert [line.split(":")[0] for line in lines] == [f"LSTMModel epoch {e}/3" for e in (1, 2, 3)]
    assert re.search(r"train \d\.\d{5} valid nan lr .*, \d+\.\d s, at most \d+ s left$", lines[0])
    assert lines[-1].endswith("at most 0 s left")
