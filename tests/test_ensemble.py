"""``ensemble`` and ``unconditional``: weights learned on validation only, one state dict for members and
weights, and an exact stacking LP."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from test_gbm import LEVELS, _dataset

from stockml.losses import PinballLoss
from stockml.models import ModelSizes, build_model
from stockml.models.ensemble import EnsembleModel, member_spec
from stockml.training.config import TrainConfig
from stockml.training.ensemble import carry_weights, last_dates, stacking_weights
from stockml.training.trainer import predict, train_model

SIZES = ModelSizes(n_features=4, horizon=2, quantiles=LEVELS, n_symbols=3, n_sectors=2)
MEMBERS = {"lightgbm": {"n_estimators": 150, "min_child_samples": 20}}


def test_stacking_weights_pick_the_member_at_the_true_quantile() -> None:
    y = np.random.default_rng(0).normal(size=4000)
    right, wrong = np.full(4000, 1.2816), np.zeros(4000)  # N(0, 1)'s 0.9 quantile, and its median
    w = stacking_weights(np.stack([wrong, right]), y, 0.9)
    assert w.shape == (2,) and abs(w.sum() - 1.0) < 1e-12 and (w >= 0).all()
    assert w[1] > 0.95
    half = stacking_weights(np.stack([np.full(4000, 2.0), np.full(4000, -2.0)]), y, 0.5)
    assert np.allclose(half, [0.5, 0.5], atol=0.02)  # the median 0 is their even mix


def _ensemble(combine: str = "stack", shrink: float = 0.0) -> EnsembleModel:
    torch.manual_seed(0)
    config = {
        "members": ("unconditional", "lightgbm"),
        "member_configs": MEMBERS,
        "combine": combine,
        "shrink": shrink,
    }
    model = build_model("ensemble", SIZES, config)
    assert isinstance(model, EnsembleModel)
    return model


def _crps(pred: np.ndarray, target: np.ndarray) -> float:
    loss = PinballLoss(LEVELS)
    return 2 * float(loss(torch.from_numpy(pred).float(), torch.from_numpy(target).float()))


def test_a_stacked_ensemble_learns_its_weights_on_validation_and_round_trips() -> None:
    train, valid, test = _dataset(1500, 1), _dataset(300, 2), _dataset(1000, 3)
    model = _ensemble()
    result = train_model(model, train, valid, TrainConfig(seed=0, progress=False))
    assert result.seconds > 0 and {row["member"] for row in result.history} == {0.0, 1.0}
    weights = model.weight_table()
    assert np.allclose(np.sum(list(weights.values()), axis=0), 1.0)
    assert weights["lightgbm"][LEVELS.index(0.5)] > 0.8  # the median follows f0: lightgbm knows it

    pred, order = predict(model, test)
    target = test.arrays.target[test.rows[order]]
    members = {n: predict(model.member(n), test)[0] for n in ("unconditional", "lightgbm")}
    assert (np.diff(pred, axis=-1) >= 0).all()
    assert _crps(pred, target) < _crps(members["unconditional"], target)
    assert _crps(pred, target) < 1.02 * _crps(members["lightgbm"], target)

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)  # members and weights in one state dict, as the bundle saves
    buffer.seek(0)
    clone = _ensemble()
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    np.testing.assert_array_equal(pred, predict(clone, test)[0])

    shrunk = _ensemble(shrink=0.5)  # the same fit, weights pulled halfway to equal
    train_model(shrunk, train, valid, TrainConfig(seed=0, progress=False))
    np.testing.assert_allclose(shrunk.weights.numpy(), 0.5 * model.weights.numpy() + 0.25, atol=1e-6)


def test_mean_keeps_equal_weights_and_bad_configs_are_refused() -> None:
    model = _ensemble("mean")
    train_model(model, _dataset(400, 1), _dataset(100, 2), TrainConfig(seed=0, progress=False))
    assert torch.equal(model.weights, torch.full((2, len(LEVELS)), 0.5))
    with pytest.raises(ValueError, match="distinct"):
        build_model("ensemble", SIZES, {"members": ("lstm", "lstm")})
    with pytest.raises(ValueError, match="cross-sectional"):
        build_model("ensemble", SIZES, {"members": ("lstm", "graph")})


def test_unconditional_forecasts_the_training_quantiles() -> None:
    train = _dataset(1500, 1)
    model = build_model("unconditional", SIZES)
    train_model(model, train, None, TrainConfig(progress=False))
    pred, _ = predict(model, _dataset(50, 5))
    expected = np.quantile(train.arrays.target[train.rows].astype(np.float64), LEVELS, axis=0).T  # (H, Q)
    np.testing.assert_allclose(pred, np.broadcast_to(expected, pred.shape), atol=1e-6)


def test_a_sliding_window_member_is_fitted_on_the_last_dates_only() -> None:
    ds = _dataset(300, 1)  # 296 sample dates x 2 symbols
    cut = last_dates(ds, 100)
    assert len(np.unique(cut.arrays.day[cut.rows])) == 100 and len(cut) == 200
    assert last_dates(ds, None) is ds and last_dates(ds, 1000) is ds
    assert member_spec("lightgbm:250") == ("lightgbm", 250) and member_spec("lstm") == ("lstm", None)
    with pytest.raises(ValueError, match="positive"):
        member_spec("lstm:0")
    model = build_model(
        "ensemble", SIZES, {"members": ("unconditional", "unconditional:50"), "combine": "mean"}
    )
    assert isinstance(model, EnsembleModel)
    train_model(model, ds, None, TrainConfig(progress=False))
    recent = last_dates(ds, 50)
    expected = np.quantile(recent.arrays.target[recent.rows].astype(np.float64), LEVELS, axis=0).T
    np.testing.assert_allclose(model.member("unconditional:50").levels.numpy(), expected, atol=1e-6)
    assert not torch.equal(model.member("unconditional").levels, model.member("unconditional:50").levels)


def test_a_refit_keeps_the_last_folds_weights() -> None:
    fitted, refit, other = _ensemble(), _ensemble(), build_model("ensemble", SIZES, {"members": ("lstm",)})
    fitted.weights.copy_(torch.tensor([[0.2] * len(LEVELS), [0.8] * len(LEVELS)]))
    carry_weights(refit, fitted)
    assert torch.equal(refit.weights, fitted.weights)
    carry_weights(other, fitted)  # other members: nothing to carry
    assert torch.equal(other.weights, torch.ones(1, len(LEVELS)))
