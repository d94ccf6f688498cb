"""Composite losses: weighted sums of the terms in :mod:`stockml.losses.terms`.

Every weight is in a frozen config; a term whose weight is 0 is not computed. Terms that need a
model output (``kl``, ``regime_probs``, ``l2`` in ``aux``) are skipped when the model has none.
The default weights assume targets of roughly unit scale (standardised returns); with raw daily
log returns (~0.02) scale the squared-error terms up or the scale-free terms down.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from stockml.losses.base import PinballLoss, median_index, valid_mask
from stockml.losses.terms import (
    DirectionLoss,
    ExtremeMoveLoss,
    MedianMSELoss,
    VolatilityLoss,
    drawdown_term,
    regime_balance,
    sharpe_term,
    signal_to_noise,
)


class HybridLossConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    pinball: float = Field(default=1.0, ge=0)
    mse: float = Field(default=0.5, ge=0)
    direction: float = Field(default=0.05, ge=0)
    volatility: float = Field(default=0.5, ge=0)
    extreme: float = Field(default=0.5, ge=0)
    regime: float = Field(default=0.01, ge=0)
    kl: float = Field(default=1e-3, ge=0)
    extreme_z: float = Field(default=2.0, gt=0)


class PTFTVSSMLossConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    pinball: float = Field(default=1.0, ge=0)
    kl: float = Field(default=1e-3, ge=0)
    sharpe: float = Field(default=0.05, ge=0)
    drawdown: float = Field(default=0.05, ge=0)
    l2: float = Field(default=1e-6, ge=0)
    cumulative_target: bool = True  # target[h] = log(P_{t+h} / P_t); False: per-step returns


class _CompositeLoss(nn.Module):
    """Shared call signature: ``forward`` = sum of ``weight * term`` over :meth:`terms`."""

    config: BaseModel

    def terms(
        self, pred: Tensor, target: Tensor, *, mask: Tensor | None = None,
        weight: Tensor | None = None, aux: dict[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:  # fmt: skip
        """Unweighted value of every term with a non-zero weight (for logging)."""
        raise NotImplementedError

    def forward(
        self, pred: Tensor, target: Tensor, *, mask: Tensor | None = None,
        weight: Tensor | None = None, aux: dict[str, Tensor] | None = None,
    ) -> Tensor:  # fmt: skip
        parts = self.terms(pred, target, mask=mask, weight=weight, aux=aux)
        return sum((getattr(self.config, name) * value for name, value in parts.items()), pred.new_zeros(()))


class HybridLoss(_CompositeLoss):
    """``pinball + mse(median) + direction + volatility matching + extreme moves``
    ``(+ regime balance when aux has regime_probs, + KL when aux has kl)``; see :mod:`.terms`."""

    config: HybridLossConfig

    def __init__(self, quantiles: tuple[float, ...], config: HybridLossConfig | None = None):
        super().__init__()
        self.config = config or HybridLossConfig()
        q = tuple(quantiles)
        self.elementwise = nn.ModuleDict(
            {
                "pinball": PinballLoss(q),
                "mse": MedianMSELoss(q),
                "direction": DirectionLoss(q),
                "volatility": VolatilityLoss(q),
                "extreme": ExtremeMoveLoss(q, z=self.config.extreme_z),
            }
        )

    def terms(
        self, pred: Tensor, target: Tensor, *, mask: Tensor | None = None,
        weight: Tensor | None = None, aux: dict[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:  # fmt: skip
        cfg, aux = self.config, aux or {}
        out = {
            name: term(pred, target, mask=mask, weight=weight)
            for name, term in self.elementwise.items()
            if getattr(cfg, name) > 0
        }
        if cfg.regime > 0 and "regime_probs" in aux:
            out["regime"] = regime_balance(aux["regime_probs"])
        if cfg.kl > 0 and "kl" in aux:
            out["kl"] = aux["kl"]
        return out


class PTFTVSSMLoss(_CompositeLoss):
    """``pinball + KL + Sharpe-style + max-drawdown-style + L2``.

    The Sharpe and drawdown terms trade ``tanh(median / sigma)`` (sigma implied by the outer
    quantiles) on the realised returns: :func:`.terms.sharpe_term`, :func:`.terms.drawdown_term`.
    ``KL`` and ``L2`` are read from ``aux`` (``kl``; ``l2`` = the model's sum of squared weights).
    """

    config: PTFTVSSMLossConfig

    def __init__(self, quantiles: tuple[float, ...], config: PTFTVSSMLossConfig | None = None):
        super().__init__()
        self.config = config or PTFTVSSMLossConfig()
        self.quantiles = tuple(quantiles)
        self.anchor = median_index(self.quantiles)
        self.pinball = PinballLoss(self.quantiles)

    def terms(
        self, pred: Tensor, target: Tensor, *, mask: Tensor | None = None,
        weight: Tensor | None = None, aux: dict[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:  # fmt: skip
        cfg, aux = self.config, aux or {}
        out: dict[str, Tensor] = {}
        if cfg.pinball > 0:
            out["pinball"] = self.pinball(pred, target, mask=mask, weight=weight)
        if cfg.sharpe > 0 or cfg.drawdown > 0:
            valid = valid_mask(target, mask)
            clean = target.masked_fill(~valid, 0.0)
            signal = signal_to_noise(pred, self.quantiles, self.anchor)
            if cfg.sharpe > 0:
                out["sharpe"] = sharpe_term(signal, clean, valid)
            if cfg.drawdown > 0:
                out["drawdown"] = drawdown_term(signal, clean, valid, cfg.cumulative_target)
        for name in ("kl", "l2"):
            if getattr(cfg, name) > 0 and name in aux:
                out[name] = aux[name]
        return out
