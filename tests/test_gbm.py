"""``lightgbm``: fitted in one call through the trainer, finds a planted signal with calibrated quantiles,
deterministic, and its boosters survive the state dict (what the bundle and walk-forward pickles carry)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch

from stockml.models import ModelSizes, build_model
from stockml.models.gbm import LightGBMModel
from stockml.training.config import TrainConfig
from stockml.training.trainer import predict, train_model
from stockml.training.windows import WindowArrays, WindowDataset

T, F, H = 5, 4, 2
LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def _dataset(n: int, seed: int) -> WindowDataset:
    """Two symbols; the target at every horizon is 0.8 * x[t, 0] + N(0, 1) (x[t, 0] the as-of day's f0)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n, F)).astype(np.float32)
    target = np.stack([0.8 * x[:, 0] + rng.normal(size=2 * n) for _ in range(H)], axis=1)
    dates = np.tile(pd.bdate_range("2020-01-01", periods=n).to_numpy("datetime64[ns]"), 2)
    arrays = WindowArrays(
        x=x,
        target=target.astype(np.float32),
        scale=np.ones((2 * n, H)),
        symbol=np.repeat([1, 2], n),
        sector=np.ones(2 * n, np.int64),
        date=dates,
        ts_code=np.repeat(["000001.SZ", "600000.SH"], n),
        pos=np.tile(np.arange(n), 2),
        day=dates.astype("datetime64[D]").astype(np.int64),
        feature_columns=[f"f{i}" for i in range(F)],
    )
    rows = np.concatenate([np.arange(T - 1, n), np.arange(n + T - 1, 2 * n)])
    return WindowDataset(arrays, rows, T)


def _model(**config: object) -> LightGBMModel:
    sizes = ModelSizes(n_features=F, horizon=H, quantiles=LEVELS, n_symbols=3, n_sectors=2)
    model = build_model("lightgbm", sizes, {"n_estimators": 200, "min_child_samples": 20, **config})
    assert isinstance(model, LightGBMModel)
    return model


def _fitted(seed: int = 0) -> tuple[LightGBMModel, WindowDataset]:
    model = _model()
    result = train_model(model, _dataset(1500, 1), _dataset(300, 2), TrainConfig(seed=seed, progress=False))
    assert result.seconds > 0 and len(result.history) == 1
    assert 0 < result.best_valid < 1.0 and 1 <= result.history[0]["rounds"] <= 200
    return model, _dataset(1000, 3)


def test_lightgbm_finds_the_signal_with_calibrated_quantiles() -> None:
    model, test = _fitted()
    pred, order = predict(model, test)
    assert pred.shape == (len(test), H, len(LEVELS))
    assert (np.diff(pred, axis=-1) >= 0).all()  # sorted: quantiles never cross
    x0 = test.arrays.x[test.rows[order], 0]
    y = test.arrays.target[test.rows[order]]
    median = pred[:, :, LEVELS.index(0.5)]
    assert np.corrcoef(median[:, 0], x0)[0, 1] > 0.9  # the median follows 0.8 * f0
    inside = (y >= pred[:, :, LEVELS.index(0.05)]) & (y <= pred[:, :, LEVELS.index(0.95)])
    assert 0.84 < inside.mean() < 0.95  # 90% interval of N(0.8 f0, 1): measured 0.89
    importance = model.feature_importance()
    assert importance.argmax() == 0 and abs(float(importance.sum()) - 1.0) < 1e-9


def test_lightgbm_is_deterministic_and_survives_the_state_dict() -> None:
    model, test = _fitted(seed=4)
    again, _ = _fitted(seed=4)
    before, _ = predict(model, test)
    np.testing.assert_array_equal(before, predict(again, test)[0])
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)  # what the bundle saves
    buffer.seek(0)
    clone = _model()
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    np.testing.assert_array_equal(before, predict(clone, test)[0])


def test_an_unfitted_lightgbm_says_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        predict(_model(), _dataset(50, 0))
    with pytest.raises(ValueError, match="lags"):
        _model(lags=(-1,))
