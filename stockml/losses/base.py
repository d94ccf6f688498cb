"""The loss base: masking, per-element weights and reduction in one place; pinball as the default.

Every loss is called as ``loss(pred, target, *, mask=None, weight=None, aux=None) -> Tensor`` with

* ``pred``: ``(B, H, Q)`` quantile forecasts (any leading dims are allowed: ``(..., H, Q)``),
* ``target``: ``(B, H)`` realised log returns (non-finite entries are treated as masked),
* ``mask``: bool ``(B,)`` or ``(B, H)``, True = valid,
* ``weight``: float ``(B,)`` or ``(B, H)``, per-element weights (the mean is a weighted mean),
* ``aux``: the model's ``aux_outputs()`` (``kl``, ``regime_probs``, ``l2``), used by composite losses.

The quantile levels are given once, to the constructor.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Literal

import torch
from torch import Tensor, nn

from stockml.models.base import median_index

Reduction = Literal["mean", "sum", "none"]


def valid_mask(target: Tensor, mask: Tensor | None) -> Tensor:
    """Bool mask with the target's shape: ``mask`` broadcast over trailing dims, and finite targets."""
    valid = target.isfinite()
    if mask is None:
        return valid
    m = mask.bool()
    while m.dim() < target.dim():
        m = m[..., None]  # (B,) -> (B, 1)
    return valid & m.expand_as(target)


def implied_sigma(pred: Tensor, quantiles: tuple[float, ...]) -> Tensor:
    """Scale implied by the outermost quantiles under a normal: ``(q_hi - q_lo) / (z_hi - z_lo)``."""
    z_span = NormalDist().inv_cdf(quantiles[-1]) - NormalDist().inv_cdf(quantiles[0])
    return (pred[..., -1] - pred[..., 0]) / z_span


class BaseLoss(nn.Module):
    """Masks, weights and reduces an elementwise loss; subclasses implement only :meth:`elementwise`.

    ``reduction``: ``"mean"`` (weighted mean over valid elements), ``"sum"``, or ``"none"`` (the
    weighted elementwise tensor, zero where masked).
    """

    levels: Tensor  # the quantile levels as a (Q,) buffer

    def __init__(self, quantiles: tuple[float, ...], reduction: Reduction = "mean"):
        super().__init__()
        self.quantiles = tuple(quantiles)
        self.anchor = median_index(self.quantiles)
        self.reduction = reduction
        self.register_buffer("levels", torch.tensor(self.quantiles), persistent=False)

    def elementwise(self, pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        """Loss per element: ``(..., H)`` or ``(..., H, Q)``. ``target`` is 0 where ``valid`` is False."""
        raise NotImplementedError

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        *,
        mask: Tensor | None = None,
        weight: Tensor | None = None,
        aux: dict[str, Tensor] | None = None,
    ) -> Tensor:
        valid = valid_mask(target, mask)
        loss = self.elementwise(pred, target.masked_fill(~valid, 0.0), valid)
        w = valid.to(loss.dtype)
        if weight is not None:
            while weight.dim() < target.dim():
                weight = weight[..., None]  # (B,) -> (B, 1)
            w = w * weight.to(loss.dtype)
        if loss.dim() > target.dim():  # per-quantile loss: broadcast over Q
            valid, w = valid[..., None], w[..., None]
        w = w.expand_as(loss)
        weighted = loss.masked_fill(~valid.expand_as(loss), 0.0) * w
        if self.reduction == "none":
            return weighted
        if self.reduction == "sum":
            return weighted.sum()
        return weighted.sum() / w.sum().clamp(min=1e-12)


class PinballLoss(BaseLoss):
    """Quantile (pinball) loss: ``max(tau * e, (tau - 1) * e)`` with ``e = y - q_tau``, per quantile."""

    def elementwise(self, pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        err = target[..., None] - pred  # (..., H) -> (..., H, Q)
        levels = self.levels.to(pred.device)  # works even if the loss was never moved to the device
        return torch.maximum(levels * err, (levels - 1) * err)
