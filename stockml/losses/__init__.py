"""Losses: one base that masks, weights and reduces (:mod:`.base`), the terms (:mod:`.terms`) and
the composite losses (:mod:`.composite`). ``LOSSES`` is the registry, :func:`build_loss` builds one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from stockml.losses.base import BaseLoss, PinballLoss, median_index, valid_mask
from stockml.losses.composite import HybridLoss, HybridLossConfig, PTFTVSSMLoss, PTFTVSSMLossConfig
from stockml.losses.terms import DirectionLoss, ExtremeMoveLoss, MedianMSELoss, VolatilityLoss

LOSSES: dict[str, type[nn.Module]] = {"pinball": PinballLoss, "hybrid": HybridLoss, "ptft_vssm": PTFTVSSMLoss}


def build_loss(name: str, quantiles: tuple[float, ...], config: Mapping[str, Any] | None = None) -> nn.Module:
    """Build a registered loss. ``config``: ``{"reduction": ...}`` for ``pinball``, else the fields of
    :class:`HybridLossConfig` / :class:`PTFTVSSMLossConfig` (validated; unknown keys raise)."""
    config = dict(config or {})
    if name == "pinball":
        return PinballLoss(quantiles, **config)
    if name == "hybrid":
        return HybridLoss(quantiles, HybridLossConfig.model_validate(config))
    if name == "ptft_vssm":
        return PTFTVSSMLoss(quantiles, PTFTVSSMLossConfig.model_validate(config))
    raise KeyError(f"unknown loss {name!r}; registered losses: {', '.join(sorted(LOSSES))}")


__all__ = [
    "LOSSES",
    "BaseLoss",
    "DirectionLoss",
    "ExtremeMoveLoss",
    "HybridLoss",
    "HybridLossConfig",
    "MedianMSELoss",
    "PTFTVSSMLoss",
    "PTFTVSSMLossConfig",
    "PinballLoss",
    "VolatilityLoss",
    "build_loss",
    "median_index",
    "valid_mask",
]
