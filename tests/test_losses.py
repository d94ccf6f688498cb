"""Losses: hand-computed pinball values, masking, weights, reductions, and gradient of every term."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from stockml.losses import (
    LOSSES,
    HybridLoss,
    HybridLossConfig,
    PinballLoss,
    PTFTVSSMLoss,
    PTFTVSSMLossConfig,
    build_loss,
)
from stockml.losses.terms import drawdown_term, regime_balance
from stockml.models import ModelSizes, build_model

QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def random_forecast(seed: int = 0, b: int = 64, h: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(b, h, len(QUANTILES), generator=g)
    pred = raw.sort(dim=-1).values.requires_grad_(True)
    target = 1.5 * torch.randn(b, h, generator=g)
    return pred, target


def test_pinball_hand_computed():
    loss = PinballLoss((0.1, 0.9))
    pred = torch.tensor([[[0.0, 1.0]]])  # (B=1, H=1, Q=2)
    # y = 0.5: q0.1 under-predicts by 0.5 -> 0.1 * 0.5; q0.9 over-predicts by 0.5 -> 0.1 * 0.5
    assert loss(pred, torch.tensor([[0.5]])).item() == pytest.approx(0.05)
    # y = 2: both under-predict: 0.1 * 2 and 0.9 * 1 -> mean 0.55
    assert loss(pred, torch.tensor([[2.0]])).item() == pytest.approx(0.55)
    # y = -1: both over-predict: 0.9 * 1 and 0.1 * 2 -> mean 0.55
    assert loss(pred, torch.tensor([[-1.0]])).item() == pytest.approx(0.55)


def test_reductions():
    pred = torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]])
    target = torch.tensor([[0.5], [2.0]])
    none = PinballLoss((0.1, 0.9), reduction="none")(pred, target)
    assert torch.allclose(none, torch.tensor([[[0.05, 0.05]], [[0.2, 0.9]]]))
    assert PinballLoss((0.1, 0.9), reduction="sum")(pred, target).item() == pytest.approx(1.2)
    assert PinballLoss((0.1, 0.9))(pred, target).item() == pytest.approx(0.3)


@pytest.mark.parametrize("mask_shape", ["rows", "elements"])
def test_masked_elements_are_ignored_even_when_nan(mask_shape):
    pred, target = random_forecast()
    loss = PinballLoss(QUANTILES)
    if mask_shape == "rows":
        mask = torch.arange(64) % 3 != 0
        expected = loss(pred[mask], target[mask])
    else:
        mask = torch.ones(64, 5, dtype=torch.bool)
        mask[:, 2] = False
        keep = [0, 1, 3, 4]
        expected = loss(pred[:, keep], target[:, keep])
    target = target.masked_fill(~(mask if mask.dim() == 2 else mask[:, None]), float("nan"))
    value = loss(pred, target, mask=mask)
    assert torch.allclose(value, expected)
    value.backward()
    assert torch.isfinite(pred.grad).all()


def test_non_finite_targets_are_masked_automatically():
    pred, target = random_forecast()
    target[0, 0] = float("inf")
    assert torch.isfinite(PinballLoss(QUANTILES)(pred, target))


def test_weights_act_like_repeated_rows():
    pred, target = random_forecast(b=4)
    weight = torch.tensor([1.0, 2.0, 1.0, 3.0])
    repeat = torch.tensor([0, 1, 1, 2, 3, 3, 3])
    loss = PinballLoss(QUANTILES)
    assert torch.allclose(loss(pred, target, weight=weight), loss(pred[repeat], target[repeat]))
    zero_last = torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert torch.allclose(loss(pred, target, weight=zero_last), loss(pred[:3], target[:3]))


def test_regime_balance_bounds():
    k = 4
    uniform = torch.full((8, k), 1 / k)
    assert regime_balance(uniform).item() == pytest.approx(math.log(k), abs=1e-5)
    diverse_confident = torch.eye(k).repeat(2, 1)
    assert regime_balance(diverse_confident).item() == pytest.approx(0.0, abs=1e-5)
    collapsed = torch.eye(k)[[0] * 8]
    assert regime_balance(collapsed).item() == pytest.approx(math.log(k), abs=1e-5)


def test_drawdown_hand_computed():
    signal = torch.full((1, 4), 100.0)  # tanh -> fully long
    cumulative = torch.tensor([[0.1, -0.2, -0.1, 0.3]])  # steps 0.1, -0.3, 0.1, 0.4: peak 0.1, trough -0.2
    valid = torch.ones(1, 4, dtype=torch.bool)
    assert drawdown_term(signal, cumulative, valid).item() == pytest.approx(0.3, abs=1e-5)
    steps = torch.tensor([[0.1, -0.3, 0.1, 0.4]])
    assert drawdown_term(signal, steps, valid, cumulative=False).item() == pytest.approx(0.3, abs=1e-5)


HYBRID_TERMS = ["pinball", "mse", "direction", "volatility", "extreme"]
PTFT_VSSM_TERMS = ["pinball", "sharpe", "drawdown"]


_WEIGHTS = {
    HybridLossConfig: {"pinball", "mse", "direction", "volatility", "extreme", "regime", "kl"},
    PTFTVSSMLossConfig: {"pinball", "kl", "sharpe", "drawdown", "l2"},
}


def only(config_cls, name: str):
    """A loss config with weight 1 on ``name`` and 0 on every other term."""
    return config_cls(**{f: float(f == name) for f in _WEIGHTS[config_cls]})


@pytest.mark.parametrize(
    ("loss_cls", "config_cls", "name"),
    [(HybridLoss, HybridLossConfig, n) for n in HYBRID_TERMS]
    + [(PTFTVSSMLoss, PTFTVSSMLossConfig, n) for n in PTFT_VSSM_TERMS],
)
def test_each_forecast_term_carries_gradient(loss_cls, config_cls, name):
    pred, target = random_forecast()
    loss = loss_cls(QUANTILES, only(config_cls, name))
    value = loss(pred, target)
    assert set(loss.terms(pred, target)) == {name}
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0, f"{name} has no gradient"


@pytest.mark.parametrize(
    ("loss_cls", "config_cls", "name"),
    [(HybridLoss, HybridLossConfig, "regime"), (HybridLoss, HybridLossConfig, "kl")]
    + [(PTFTVSSMLoss, PTFTVSSMLossConfig, "kl"), (PTFTVSSMLoss, PTFTVSSMLossConfig, "l2")],
)
def test_each_model_term_carries_gradient(loss_cls, config_cls, name):
    pred, target = random_forecast()
    logits = torch.randn(64, 4, requires_grad=True)
    kl, l2 = torch.tensor(0.7, requires_grad=True), torch.tensor(3.0, requires_grad=True)
    aux = {"regime_probs": torch.softmax(logits, -1), "kl": kl, "l2": l2}
    loss = loss_cls(QUANTILES, only(config_cls, name))
    loss(pred, target, aux=aux).backward()
    source = {"regime": logits, "kl": kl, "l2": l2}[name]
    assert source.grad is not None and source.grad.abs().sum() > 0
    assert loss(pred, target).item() == 0.0  # without the model output the term is skipped


@pytest.mark.parametrize(
    ("loss_cls", "config_cls"), [(HybridLoss, HybridLossConfig), (PTFTVSSMLoss, PTFTVSSMLossConfig)]
)
def test_composite_is_the_weighted_sum_of_its_terms(loss_cls, config_cls):
    pred, target = random_forecast()
    aux = {
        "regime_probs": torch.softmax(torch.randn(64, 4), -1),
        "kl": torch.tensor(0.5),
        "l2": torch.tensor(2.0),
    }
    mask = torch.arange(64) % 4 != 0
    loss = loss_cls(QUANTILES)
    terms = loss.terms(pred, target, mask=mask, aux=aux)
    assert set(terms) == _WEIGHTS[config_cls]
    expected = sum(getattr(loss.config, n) * v for n, v in terms.items())
    assert torch.allclose(loss(pred, target, mask=mask, aux=aux), expected)


def test_masking_reaches_every_term():
    pred, target = random_forecast()
    mask = torch.arange(64) < 40
    for loss in (HybridLoss(QUANTILES), PTFTVSSMLoss(QUANTILES)):
        noisy = target.clone()
        noisy[~mask] = float("nan")
        full = loss(pred, noisy, mask=mask)
        assert torch.isfinite(full)
        assert torch.allclose(full, loss(pred[:40], target[:40]), atol=1e-5)


def test_build_loss_registry_and_validation():
    assert set(LOSSES) == {"pinball", "hybrid", "ptft_vssm"}
    assert isinstance(build_loss("hybrid", QUANTILES, {"mse": 0.0}), HybridLoss)
    with pytest.raises(ValidationError):
        build_loss("ptft_vssm", QUANTILES, {"sharp": 1.0})
    with pytest.raises(KeyError, match="registered losses"):
        build_loss("mae", QUANTILES)


@pytest.mark.parametrize("name", ["vssm", "ptft_vssm", "hybrid"])
def test_models_train_with_their_default_loss(name):
    sizes = ModelSizes(n_features=4, horizon=3, n_symbols=5, n_sectors=3)
    torch.manual_seed(0)
    model = build_model(name, sizes)
    criterion = build_loss(model.default_loss, sizes.quantiles)
    batch = {
        "x": torch.randn(8, 10, 4),
        "symbol": torch.randint(0, 5, (8,)),
        "sector": torch.randint(0, 3, (8,)),
        "target": torch.randn(8, 3),
        "mask": torch.tensor([True] * 7 + [False]),
    }
    loss = model.loss(batch, criterion)
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
