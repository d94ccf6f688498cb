"""The terms composite losses are built from.

Elementwise terms are :class:`~stockml.losses.base.BaseLoss` subclasses; batch terms (a regime
balance, a Sharpe ratio, a drawdown) are statistics of the whole batch and are plain functions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from stockml.losses.base import BaseLoss, Reduction, implied_sigma

_PROBIT_TO_LOGIT = 1.702  # sigmoid(1.702 z) ~ Phi(z)


def signal_to_noise(pred: Tensor, quantiles: tuple[float, ...], anchor: int) -> Tensor:
    """The forecast's median over its implied scale, ``(..., H)``: a scale-free trading signal."""
    return pred[..., anchor] / implied_sigma(pred, quantiles).clamp(min=1e-6)


class MedianMSELoss(BaseLoss):
    """Squared error of the median forecast: ``(y - q_0.5)^2``."""

    def elementwise(self, pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        return (target - pred[..., self.anchor]).pow(2)


class DirectionLoss(BaseLoss):
    """Cross-entropy of the forecast's own probability of an up-move, ``P(up) ~ Phi(q_0.5 / sigma)``:
    ``softplus(-1.702 * sign(y) * q_0.5 / sigma)`` with sigma implied by the outer quantiles.
    Scale-free, and a proper score for the direction."""

    def elementwise(self, pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        snr = signal_to_noise(pred, self.quantiles, self.anchor)
        return F.softplus(-_PROBIT_TO_LOGIT * torch.sign(target) * snr)


class VolatilityLoss(BaseLoss):
    """Volatility matching: ``(sigma * sqrt(2 / pi) - |y - q_0.5|)^2``, since ``E|y - m| = sigma sqrt(2/pi)``
    for a normal; sigma is implied by the outermost quantiles, so the band width tracks realised moves."""

    def elementwise(self, pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        sigma = implied_sigma(pred, self.quantiles)
        return (sigma * math.sqrt(2 / math.pi) - (target - pred[..., self.anchor]).abs()).pow(2)


class ExtremeMoveLoss(BaseLoss):
    """Squared median error on extreme moves only: ``1[|y| > z * rms(y)] * (y - q_0.5)^2``, where
    ``rms(y)`` is taken over the valid targets of the batch (no gradient)."""

    def __init__(self, quantiles: tuple[float, ...], z: float = 2.0, reduction: Reduction = "mean"):
        super().__init__(quantiles, reduction)
        self.z = z

    def elementwise(self, pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        rms = (target.pow(2).sum() / valid.sum().clamp(min=1)).sqrt().detach()
        extreme = (target.abs() > self.z * rms).to(pred.dtype)
        return extreme * (target - pred[..., self.anchor]).pow(2)


def regime_balance(probs: Tensor) -> Tensor:
    """``log K + mean_b H(p_b) - H(mean_b p_b)`` for regime probabilities ``(B, K)``; in ``[0, 2 log K]``.

    Low when each row is confident about its regime and the batch uses all regimes (no collapse).
    """
    k = probs.shape[-1]
    p = probs.clamp(min=1e-8)
    row_entropy = -(p * p.log()).sum(-1).mean()
    mean_p = p.mean(0)
    return math.log(k) + row_entropy + (mean_p * mean_p.log()).sum()


def sharpe_term(signal: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """Minus the mean over horizons of the cross-sectional Sharpe ratio of ``tanh(signal) * y``.

    ``signal``, ``target`` and ``valid`` are ``(B, H)``; ``target`` is 0 where invalid.
    """
    w = valid.to(target.dtype)
    pnl = torch.tanh(signal) * target
    n = w.sum(0).clamp(min=1)
    mean = (w * pnl).sum(0) / n
    std = ((w * (pnl - mean).pow(2)).sum(0) / n + 1e-8).sqrt()
    return -(mean / std).mean()


def drawdown_term(signal: Tensor, target: Tensor, valid: Tensor, cumulative: bool = True) -> Tensor:
    """Mean over rows of the maximum drawdown of the equity path ``cumsum(tanh(signal_h) * r_h)``.

    ``r_h`` is the step return: ``y_h - y_{h-1}`` when the target holds cumulative returns
    (``log P_{t+h} / P_t``), else ``y_h``. Invalid steps contribute nothing.
    """
    steps = torch.diff(target, dim=-1, prepend=torch.zeros_like(target[..., :1])) if cumulative else target
    position = torch.tanh(signal)
    equity = torch.cumsum((position * steps).masked_fill(~valid, 0.0), dim=-1)  # (B, H)
    equity = torch.cat([torch.zeros_like(equity[..., :1]), equity], dim=-1)  # start at 0
    drawdown = (torch.cummax(equity, dim=-1).values - equity).amax(-1)  # (B,)
    rows = valid.any(-1).to(drawdown.dtype)
    return (drawdown * rows).sum() / rows.sum().clamp(min=1)
