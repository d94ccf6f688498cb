"""The one model contract: sizes, config, quantile head and the :class:`ForecastModel` base.

Contract
--------
* A model is built from data-derived :class:`ModelSizes` plus one frozen config object
  (a subclass of :class:`ModelConfig`).
* ``forward(batch) -> (B, H, Q)``: quantile forecasts of the H future log returns, for
  ``sizes.quantiles`` in increasing order. Quantiles never cross, by construction.
  ``forward`` never reads ``batch["target"]``.
* ``loss(batch, criterion) -> scalar`` is the ONE place a model's training objective lives. The
  trainer calls exactly this. The default is ``criterion(forward(batch), target, mask=..., aux=...)``;
  the diffusion model overrides it with its denoising objective, the hybrid adds its diffusion branch's.
* ``last_outputs`` (attribute) holds the extra tensors of the last forward, with gradient.
  ``aux_outputs()`` is what a loss receives: ``last_outputs`` plus ``"l2"`` (squared weight norm);
  the keys a loss reads are ``"kl"`` (scalar) and ``"regime_probs"`` (B, K).
* ``get_last_details()`` hands detached tensors for monitoring (variable-selection weights, regime
  probabilities, gate weights and logits, ...). Keys are documented on each model.

A criterion is any callable ``(pred, target, *, mask=None, weight=None, aux=None) -> Tensor``;
see :mod:`stockml.losses`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.nn import functional as F

DEFAULT_QUANTILES: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)

# The one batch type of models and loaders: tensors by key (``x``, ``symbol``, ``sector``, ``date``,
# ``target``, ``mask``, ``node_mask``; see stockml.training.windows) plus the loaders' ``ts_code``
# (a list of str), hence ``Any``.
Batch = Mapping[str, Any]
Criterion = Callable[..., Tensor]


@dataclass(frozen=True)
class ModelSizes:
    """Sizes that come from the data, not from the config.

    ``n_symbols`` / ``n_sectors`` are vocabulary sizes including index 0 (unknown); 0 means "no
    vocabulary", and the model then has no embedding for it. ``feature_groups`` maps a family name
    (e.g. ``"price"``, ``"volatility"``) to column indices of ``x``, as
    :func:`stockml.features.feature_groups` finds them; used by ``multibranch``.
    """

    n_features: int
    horizon: int
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    n_symbols: int = 0
    n_sectors: int = 0
    feature_groups: dict[str, list[int]] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.n_features < 1 or self.horizon < 1:
            raise ValueError(f"n_features and horizon must be >= 1, got {self.n_features}, {self.horizon}")
        qs = self.quantiles
        if (
            not qs
            or any(not 0.0 < q < 1.0 for q in qs)
            or any(a >= b for a, b in zip(qs, qs[1:], strict=False))
        ):
            raise ValueError(f"quantiles must be strictly increasing in (0, 1), got {qs}")
        if self.n_symbols < 0 or self.n_sectors < 0:
            raise ValueError("vocabulary sizes must be >= 0")
        for name, cols in (self.feature_groups or {}).items():
            if not cols or any(not 0 <= c < self.n_features for c in cols):
                raise ValueError(f"feature group {name!r} has bad column indices {cols}")

    @property
    def n_quantiles(self) -> int:
        return len(self.quantiles)


class ModelConfig(BaseModel):
    """Fields every model shares. Subclasses add their own; all are frozen and reject unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden_size: int = Field(default=32, ge=2)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    use_embeddings: bool = True
    embedding_dim: int = Field(default=8, ge=1)


C = TypeVar("C", bound=ModelConfig)


def member_config(member: C, parent: ModelConfig) -> C:
    """A composite model's member config: ``use_embeddings=False`` on the parent switches it off here too."""
    return member.model_copy(update={"use_embeddings": member.use_embeddings and parent.use_embeddings})


def median_index(quantiles: tuple[float, ...]) -> int:
    """Index of the quantile closest to 0.5: the anchor the other quantiles are built from."""
    return min(range(len(quantiles)), key=lambda i: abs(quantiles[i] - 0.5))


def monotone_quantiles(raw: Tensor, anchor: int) -> Tensor:
    """Map unconstrained ``(..., Q)`` values to non-decreasing quantiles.

    ``raw[..., anchor]`` is the anchor (median); the others are cumulative softplus increments
    above and below it, so ``out[..., i] <= out[..., i + 1]`` holds by construction.
    """
    centre = raw[..., anchor : anchor + 1]
    up = centre + torch.cumsum(F.softplus(raw[..., anchor + 1 :]), dim=-1)
    down = centre - torch.cumsum(F.softplus(raw[..., :anchor].flip(-1)), dim=-1).flip(-1)
    return torch.cat([down, centre, up], dim=-1)


def softplus_inverse(x: Tensor) -> Tensor:
    """``y`` with ``softplus(y) == x`` for ``x > 0``."""
    return x + torch.log(-torch.expm1(-x))


def raw_from_quantiles(values: Tensor, anchor: int, min_gap: float = 1e-3) -> Tensor:
    """Inverse of :func:`monotone_quantiles`: raw values ``(..., Q)`` that map to ``values`` (gaps below
    ``min_gap`` are widened to it)."""
    gaps = values.diff(dim=-1).clamp_min(min_gap)  # (..., Q-1): gap between level i and i+1
    raw = torch.empty_like(values)
    raw[..., anchor] = values[..., anchor]
    raw[..., anchor + 1 :] = softplus_inverse(gaps[..., anchor:])
    raw[..., :anchor] = softplus_inverse(gaps[..., :anchor])
    return raw


class QuantileHead(nn.Module):
    """Linear head to non-crossing quantiles.

    Input ``(B, D)`` gives ``(B, H, Q)`` (one projection for all horizons); input ``(B, H, D)``
    (one vector per horizon) gives ``(B, H, Q)`` with a projection shared across horizons.
    """

    def __init__(self, in_dim: int, horizon: int, quantiles: tuple[float, ...], per_horizon: bool = False):
        super().__init__()
        self.horizon, self.n_q = horizon, len(quantiles)
        self.anchor = median_index(quantiles)
        self.per_horizon = per_horizon
        self.proj = nn.Linear(in_dim, self.n_q if per_horizon else horizon * self.n_q)
        with torch.no_grad():  # start with a modest spread between neighbouring quantiles
            bias = self.proj.bias.view(-1, self.n_q)
            bias.fill_(-1.0)
            bias[:, self.anchor] = 0.0

    @torch.no_grad()
    def start_at(self, values: Tensor, weight_scale: float = 0.1) -> None:
        """Start at the quantiles ``values (H, Q)`` (e.g. the training targets' empirical quantiles):
        biases set so that a zero input gives them, weights shrunk by ``weight_scale`` so an untrained
        model forecasts about the unconditional distribution and training learns what inputs add."""
        raw = raw_from_quantiles(values.to(self.proj.bias), self.anchor)  # (H, Q)
        bias = self.proj.bias.view(-1, self.n_q)
        bias.copy_(raw.mean(dim=0, keepdim=True) if self.per_horizon else raw)
        self.proj.weight.mul_(weight_scale)

    def forward(self, h: Tensor) -> Tensor:
        raw = self.proj(h)
        if not self.per_horizon:
            raw = raw.view(h.shape[0], self.horizon, self.n_q)  # (B, H*Q) -> (B, H, Q)
        return monotone_quantiles(raw, self.anchor)


class ForecastModel(nn.Module):
    """Base class of every registered model (see the module docstring for the contract)."""

    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: name of the loss in :data:`stockml.losses.LOSSES` this model is meant to train with.
    default_loss: ClassVar[str] = "pinball"
    #: True when a forecast for one row reads other rows of its batch (a cross-section of one date): the
    #: trainer and the predictor then batch by date; otherwise rows are independent of their batch-mates.
    cross_sectional: ClassVar[bool] = False
    #: True for a model fitted in one call on whole datasets (gradient boosting) instead of by the
    #: gradient trainer: the trainer hands :meth:`fit_whole` every training and validation row at once.
    fits_whole: ClassVar[bool] = False

    def __init__(self, sizes: ModelSizes, config: ModelConfig | None = None):
        super().__init__()
        self.sizes = sizes
        self.config = config if config is not None else self.config_class()
        if not isinstance(self.config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}")
        self.last_outputs: dict[str, Tensor] = {}

    def forward(self, batch: Batch) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def window_steps(self) -> int:
        """How many of the window's last steps ``forward`` reads (a ``fits_whole`` model gets only those)."""
        return 0  # 0: the whole window

    def fit_whole(self, train: Batch, valid: Batch | None, seed: int) -> list[dict[str, float]]:
        """Fit on every training row at once (``fits_whole`` models only); returns the history rows."""
        raise NotImplementedError(f"{type(self).__name__} is trained by the gradient trainer")

    def loss(self, batch: Batch, criterion: Criterion) -> Tensor:
        """The training objective: forecast, then score it with ``criterion``.

        Leading batch dims are flattened, so cross-sectional ``(D, N, H, Q)`` forecasts are scored
        like ``(D*N, H, Q)``; ``node_mask`` (if present) is folded into the mask.
        """
        pred = self(batch)
        pred, target, mask = flatten_for_loss(pred, batch)
        return criterion(pred, target, mask=mask, aux=self.aux_outputs())

    def aux_outputs(self) -> dict[str, Tensor]:
        """Tensors from the last forward a loss may use (with gradient), plus ``"l2"``: the sum of
        squares of the matrix-shaped parameters (as in weight decay: no biases or norm gains)."""
        squares = [p.pow(2).sum() for p in self.parameters() if p.dim() >= 2]
        l2 = torch.stack(squares).sum() if squares else torch.zeros(())
        return {**self.last_outputs, "l2": l2}

    def start_at_quantiles(self, values: Tensor) -> int:
        """Start every quantile head at ``values (H, Q)``; returns how many heads there were."""
        heads = [m for m in self.modules() if isinstance(m, QuantileHead)]
        for head in heads:
            head.start_at(values)
        return len(heads)

    def fusion_parameters(self) -> list[nn.Parameter] | None:
        """The parameters that combine a multi-branch model's branches (gate, fusion, heads), which
        staged training (``TrainConfig.fusion_epochs``) trains alone first; None: not a fused model."""
        return None

    def get_last_details(self) -> dict[str, Tensor]:
        """Detached tensors from the last forward, for monitoring and logging."""
        return {k: v.detach() for k, v in self.last_outputs.items()}


def target_quantiles(target: np.ndarray, levels: tuple[float, ...]) -> Tensor:
    """(H, Q) quantiles per horizon of model-scale targets ``(N, H)``, NaN where unknown: the
    unconditional forecast (heads start there; the ``unconditional`` model forecasts it)."""
    return torch.from_numpy(np.nanquantile(target.astype(np.float64), levels, axis=0).T.astype(np.float32))


def cpu_state(model: nn.Module) -> dict[str, object]:
    """``model.state_dict()`` with every tensor detached and on the CPU; extra state (a model's own
    objects, e.g. gradient-boosting dumps) as it is."""
    return {k: v.detach().cpu() if isinstance(v, Tensor) else v for k, v in model.state_dict().items()}


def flatten_for_loss(pred: Tensor, batch: Batch) -> tuple[Tensor, Tensor, Tensor | None]:
    """``pred (..., H, Q)``, target ``(..., H)`` and a mask, flattened to one batch dim."""
    target = batch["target"]
    lead = target.shape[:-1]
    mask = batch.get("mask")
    node_mask = batch.get("node_mask")
    if node_mask is not None:
        node_mask = node_mask.bool()
        if mask is None:
            mask = node_mask
        else:
            mask = mask.bool() & (node_mask if mask.dim() == node_mask.dim() else node_mask[..., None])
    h, q = pred.shape[-2:]
    pred = pred.reshape(-1, h, q)  # (..., H, Q) -> (B', H, Q)
    target = target.reshape(-1, h)  # (..., H) -> (B', H)
    if mask is not None:
        mask = mask.reshape(-1, h) if mask.dim() == len(lead) + 1 else mask.reshape(-1)
    return pred, target, mask
