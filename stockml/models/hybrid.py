"""``hybrid``: the multi-branch bus: a conv/GRU/attention trunk plus gated, configurable branches."""

from __future__ import annotations

import math
from typing import cast

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.nn import functional as F

from stockml.models.base import (
    Batch,
    Criterion,
    ForecastModel,
    ModelConfig,
    ModelSizes,
    QuantileHead,
    flatten_for_loss,
    member_config,
    monotone_quantiles,
    raw_from_quantiles,
)
from stockml.models.blocks import StaticEmbedding, with_static
from stockml.models.diffusion import DiffusionConfig, DiffusionModel
from stockml.models.graph import GraphConfig, GraphModel
from stockml.models.ptft import PTFTConfig, PTFTModel
from stockml.models.vssm import VSSMConfig, VSSMModel


class BranchConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = True
    weight: float = Field(default=1.0, gt=0.0)  # prior weight; enters the gate as log(weight)


class HybridBranches(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    ptft: BranchConfig = BranchConfig()
    vssm: BranchConfig = BranchConfig()
    diffusion: BranchConfig = BranchConfig()
    graph: BranchConfig = BranchConfig()
    regime: BranchConfig = BranchConfig()


class HybridConfig(ModelConfig):
    branches: HybridBranches = Field(default_factory=HybridBranches)
    temperature: float = Field(default=1.0, gt=0.0)
    n_heads: int = Field(default=4, ge=1)
    n_regimes: int = Field(default=4, ge=1)
    diffusion_loss_weight: float = Field(default=1.0, ge=0.0)
    ptft: PTFTConfig = PTFTConfig(hidden_size=16)
    vssm: VSSMConfig = VSSMConfig(hidden_size=16)
    diffusion: DiffusionConfig = DiffusionConfig(hidden_size=16, n_steps=20, n_samples=32)
    graph: GraphConfig = GraphConfig(hidden_size=16)


def _member(name: str, sizes: ModelSizes, cfg: HybridConfig) -> ForecastModel:
    if name == "ptft":
        return PTFTModel(sizes, member_config(cfg.ptft, cfg))
    if name == "vssm":
        return VSSMModel(sizes, member_config(cfg.vssm, cfg))
    if name == "diffusion":
        return DiffusionModel(sizes, member_config(cfg.diffusion, cfg))
    return GraphModel(sizes, member_config(cfg.graph, cfg))


class HybridModel(ForecastModel):
    """Experts ``trunk, ptft, vssm, diffusion, graph, regime`` fused per row by a softmax gate.

    * Trunk: causal conv -> GRU -> attention pooling (last step queries the window) -> vector ``u``;
      it has its own quantile head and drives the gate.
    * ``regime`` branch: K regime probabilities from ``u`` mix K quantile heads.
    * ``ptft``/``vssm``/``diffusion``/``graph`` branches are those models (own sub-configs) on the
      same batch; the graph branch treats the batch as one cross-section.
    * Gate: ``w = softmax((G u + log prior_weight) / temperature)`` over the enabled experts; a
      disabled branch is not built and gets weight 0. A convex mix of non-crossing quantiles is
      non-crossing.
    * ``loss``: ``criterion`` on the fused forecast, plus ``diffusion_loss_weight`` times the diffusion
      branch's denoising loss (its sampled forecast carries no gradient).

    ``get_last_details()``: ``gate_weights`` and ``gate_logits`` (B, E) in the order of
    ``expert_names`` (logits before masking and temperature), ``regime_probs`` (B, K), ``kl`` (if vssm).
    """

    config_class = HybridConfig
    cross_sectional = True  # its graph branch mixes the rows of one date
    log_prior: Tensor
    enabled_mask: Tensor
    default_loss = "hybrid"
    branch_names = ("ptft", "vssm", "diffusion", "graph", "regime")

    def __init__(self, sizes: ModelSizes, config: HybridConfig | None = None):
        cfg = config or HybridConfig()
        super().__init__(sizes, cfg)
        self.cfg = cfg
        d = cfg.hidden_size
        self.static = StaticEmbedding(sizes, cfg)
        self.conv = nn.Conv1d(sizes.n_features, d, 3)
        self.rnn = nn.GRU(d, d, batch_first=True)
        self.attn = nn.MultiheadAttention(d, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.trunk_out = nn.Sequential(
            nn.Linear(2 * d + self.static.out_dim, d), nn.ReLU(), nn.Dropout(cfg.dropout)
        )
        self.trunk_head = QuantileHead(d, sizes.horizon, sizes.quantiles)

        self.enabled_branches = tuple(n for n in self.branch_names if getattr(cfg.branches, n).enabled)
        self.members = nn.ModuleDict(
            {n: _member(n, sizes, cfg) for n in self.enabled_branches if n != "regime"}
        )
        if "regime" in self.enabled_branches:
            self.regime = nn.Linear(d, cfg.n_regimes)
            self.regime_heads = nn.Linear(d, cfg.n_regimes * sizes.horizon * sizes.n_quantiles)
        self.expert_names = ["trunk", *self.branch_names]
        prior = [1.0] + [getattr(cfg.branches, n).weight for n in self.branch_names]
        on = [True] + [n in self.enabled_branches for n in self.branch_names]
        self.register_buffer("log_prior", torch.tensor([math.log(w) for w in prior]), persistent=False)
        self.register_buffer("enabled_mask", torch.tensor(on), persistent=False)
        self.gate = nn.Linear(d, len(self.expert_names))
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    @torch.no_grad()
    def start_at_quantiles(self, values: Tensor) -> int:
        """Every quantile head (trunk, members) and each regime's head start at ``values (H, Q)``."""
        heads = super().start_at_quantiles(values)
        if "regime" in self.enabled_branches:
            raw = raw_from_quantiles(values.to(self.regime_heads.bias), self.trunk_head.anchor)  # (H, Q)
            self.regime_heads.bias.copy_(raw.expand(self.cfg.n_regimes, -1, -1).reshape(-1))
            self.regime_heads.weight.mul_(0.1)
            heads += 1
        return heads

    def _trunk(self, batch: Batch) -> Tensor:
        x = batch["x"].transpose(1, 2)  # (B, T, F) -> (B, F, T)
        h = F.relu(self.conv(F.pad(x, (2, 0))))  # (B, d, T), causal: left padding only
        seq, _ = self.rnn(h.transpose(1, 2))  # (B, T, d)
        pooled, _ = self.attn(seq[:, -1:], seq, seq, need_weights=False)  # (B, 1, d)
        u = torch.cat([seq[:, -1], pooled[:, 0]], -1)
        return self.trunk_out(with_static(u, self.static(batch)))

    def _regime(self, u: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.regime(u)
        probs = torch.softmax(logits, -1)
        shape = (u.shape[0], self.cfg.n_regimes, self.sizes.horizon, self.sizes.n_quantiles)
        raw = self.regime_heads(u).view(shape)  # (B, K*H*Q) -> (B, K, H, Q)
        per_regime = monotone_quantiles(raw, self.trunk_head.anchor)
        return (probs[..., None, None] * per_regime).sum(1), probs

    def forward(self, batch: Batch) -> Tensor:
        u = self._trunk(batch)
        shape = (u.shape[0], self.sizes.horizon, self.sizes.n_quantiles)
        experts: list[Tensor] = [self.trunk_head(u)]
        aux: dict[str, Tensor] = {}
        for name in self.branch_names:
            if name not in self.enabled_branches:
                experts.append(u.new_zeros(shape))
            elif name == "regime":
                pred, aux["regime_probs"] = self._regime(u)
                experts.append(pred)
            else:
                member = self._member(name)
                experts.append(member(batch))
                if name == "vssm":
                    aux["kl"] = member.last_outputs["kl"]
                    aux.setdefault("regime_probs", member.last_outputs["regime_probs"])
        logits = self.gate(u) + self.log_prior
        masked = (logits / self.cfg.temperature).masked_fill(~self.enabled_mask, float("-inf"))
        weights = torch.softmax(masked, -1)  # (B, E)
        stacked = torch.stack(experts, 1)  # E x (B, H, Q) -> (B, E, H, Q)
        self.last_outputs = {**aux, "gate_weights": weights, "gate_logits": logits}
        return (weights[..., None, None] * stacked).sum(1)

    def loss(self, batch: Batch, criterion: Criterion) -> Tensor:
        pred, target, mask = flatten_for_loss(self(batch), batch)
        total = criterion(pred, target, mask=mask, aux=self.aux_outputs())
        if "diffusion" in self.members and self.cfg.diffusion_loss_weight > 0:
            denoising = self._member("diffusion").loss(batch, criterion)  # ignores the criterion
            total = total + self.cfg.diffusion_loss_weight * denoising
        return total

    def _member(self, name: str) -> ForecastModel:
        return cast(ForecastModel, self.members[name])

    def fusion_parameters(self) -> list[nn.Parameter]:
        """The gate that mixes the experts: what staged training (``fusion_epochs``) trains alone first."""
        return list(self.gate.parameters())
