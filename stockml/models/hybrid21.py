"""``hybrid21`` (Hybrid 2.1): group encoders -> a gated global fusion -> quantiles plus trend and
volatility heads, trained jointly; sized from the number of training samples."""

from __future__ import annotations

from statistics import NormalDist
from typing import Any, Literal, Self

import torch
from pydantic import Field, model_validator
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
)
from stockml.models.blocks import StaticEmbedding, with_static
from stockml.models.groups import TrainingWindows, correlation_groups

Size = Literal["auto", "tiny", "small", "medium", "large"]
SIZE_HIDDEN: dict[str, int] = {"tiny": 8, "small": 16, "medium": 32, "large": 64}
# (upper bound on training samples, size): < 20k tiny, < 100k small, < 500k medium, else large.
SIZE_LIMITS: tuple[tuple[int, str], ...] = ((20_000, "tiny"), (100_000, "small"), (500_000, "medium"))
SOURCES = ("own", "group", "global")  # the fusion gate's sources, in gate order
_LOG_SCALE_BOUND = 6.0  # |log scale| of the volatility head, so exp(-2 log s) stays finite


def size_for(n_train: int) -> str:
    """The size for ``n_train`` training samples (see :data:`SIZE_LIMITS`)."""
    return next((name for limit, name in SIZE_LIMITS if n_train < limit), "large")


class Hybrid21Config(ModelConfig):
    """``size``: ``"auto"`` is resolved from the training samples by :meth:`Hybrid21Model.sized` (the
    walk-forward does it); an explicit size sets ``hidden_size`` from :data:`SIZE_HIDDEN` (a different
    ``hidden_size`` beside it is an error). An unresolved ``"auto"`` uses ``hidden_size`` as given.
    ``max_groups``: group encoders. ``group_by``: ``"sector"`` (:func:`group_of`) or ``"correlation"``:
    symbols clustered by the co-movement of their returns on the training window
    (:func:`stockml.models.groups.correlation_groups`, set by :meth:`Hybrid21Model.fit_config` into
    ``symbol_groups``: the group of each symbol id, 0 = unknown; empty until fitted: every row in group 0).
    ``trend_weight`` / ``vol_weight``: the weights of the auxiliary losses; 0 skips a term."""

    size: Size = "auto"
    hidden_size: int = Field(default=16, ge=2)
    max_groups: int = Field(default=8, ge=2)
    group_by: Literal["sector", "correlation"] = "sector"
    symbol_groups: tuple[int, ...] = ()
    trend_weight: float = Field(default=0.1, ge=0.0)
    vol_weight: float = Field(default=0.1, ge=0.0)

    @model_validator(mode="before")
    @classmethod
    def _width_of_size(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("size", "auto") not in SIZE_HIDDEN:
            return data
        width = SIZE_HIDDEN[data["size"]]
        if data.get("hidden_size", width) != width:
            raise ValueError(f"size {data['size']!r} means hidden_size {width}, got {data['hidden_size']}")
        return {**data, "hidden_size": width}


def group_of(sector: Tensor, max_groups: int) -> Tensor:
    """Group index of each sector id: unknown (0) is group 0; known sectors are folded onto groups
    ``1 .. max_groups - 1`` by ``1 + (sector - 1) % (max_groups - 1)`` (an industry vocabulary has
    about a hundred entries, more than a small model has encoders for)."""
    return torch.where(sector > 0, 1 + (sector - 1) % (max_groups - 1), torch.zeros_like(sector))


def masked_mean_by(values: Tensor, key: Tensor, valid: Tensor) -> Tensor:
    """For each row of ``values (N, D)``: the mean over the valid rows with the same ``key (N,)``
    (zero when there are none). Invalid rows contribute nothing."""
    keys, inverse = torch.unique(key, return_inverse=True)  # inverse (N,): key -> 0..K-1
    w = valid.to(values.dtype)
    sums = values.new_zeros(len(keys), values.shape[1]).index_add(0, inverse, values * w[:, None])
    counts = w.new_zeros(sums.shape[0]).index_add(0, inverse, w)
    return sums[inverse] / counts[inverse].clamp(min=1.0)[:, None]


def _last_hidden(rnn: nn.Module, x: Tensor) -> Tensor:
    _, h_n = rnn(x)  # h_n: (1, B, D)
    return h_n[-1]


class Hybrid21Model(ForecastModel):
    """Group -> global fusion with multi-task heads.

    Input ``x (B, T, F)`` (rows of one or more dates, ``date (B,)``) or ``(D, N, T, F)`` with optional
    ``node_mask (D, N)``; output ``(B, H, Q)`` / ``(D, N, H, Q)``. Rows mix only with valid rows of
    their own date. Groups come from ``sector`` (:func:`group_of`), or with ``group_by="correlation"`` from
    the symbol's cluster of co-moving returns on the training window (``symbol_groups``).

    * Sources per row: ``own``, the last GRU state of its group's encoder (each row goes through exactly
      one of ``max_groups`` encoders); ``group``, the mean of ``own`` over the valid rows of its group on
      its date (itself included); ``global``, ``tanh(W [g_i, mean_date(g)])`` where ``g`` is a shared
      GRU on every row and the mean is the date's market context.
    * Fusion gate: ``softmax`` over the three sources from their concatenation (plus symbol/sector
      embeddings); it starts at equal weights. The fused vector feeds a shared layer and three heads.
    * Heads: quantiles ``(B, H, Q)``; trend logits ``(B, H)`` for ``P(target_h > 0)`` (BCE); volatility
      ``log s (B, H)``, scored by the zero-mean Gaussian NLL ``log s + y^2 / (2 s^2)`` of the target
      ``y``. The target is the h-day cumulative return over a causal volatility, so ``|y|`` is the
      horizon's realised volatility proxy: the batch carries no per-day returns inside the horizon.
    * ``loss`` = ``criterion`` + ``trend_weight * BCE`` + ``vol_weight * NLL`` (means over valid labels).

    ``get_last_details()``: ``gate_weights (B, 3)`` in :data:`SOURCES` order, ``trend_prob (B, H)``,
    ``vol_log_scale (B, H)``, ``group (B,)``, ``sources (B, 3, D)``; B is every row (D*N for a
    ``(D, N, ...)`` batch). :meth:`weight_table` averages the gate over eval-mode forwards.
    """

    config_class = Hybrid21Config
    symbol_group: Tensor
    cross_sectional = True  # group and market means mix the rows of one date

    def __init__(self, sizes: ModelSizes, config: Hybrid21Config | None = None):
        cfg = config or Hybrid21Config()
        super().__init__(sizes, cfg)
        self.cfg = cfg
        d, f, h = cfg.hidden_size, sizes.n_features, sizes.horizon
        self.static = StaticEmbedding(sizes, cfg)
        self.group_encoders = nn.ModuleList(nn.GRU(f, d, batch_first=True) for _ in range(cfg.max_groups))
        self.global_encoder = nn.GRU(f, d, batch_first=True)
        self.global_proj = nn.Linear(2 * d, d)
        self.gate = nn.Linear(len(SOURCES) * d + self.static.out_dim, len(SOURCES))
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)
        self.shared = nn.Sequential(nn.Linear(d + self.static.out_dim, d), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.head = QuantileHead(d, h, sizes.quantiles)
        self.trend = nn.Linear(d, h)
        self.vol = nn.Linear(d, h)
        groups = torch.tensor(cfg.symbol_groups or (0,), dtype=torch.long)
        self.register_buffer("symbol_group", groups.clamp(0, cfg.max_groups - 1), persistent=False)
        self._gate_sum: Tensor | None = None  # eval-mode gate statistics, see weight_table
        self._gate_rows: Tensor | None = None

    @classmethod
    def sized(cls, config: Hybrid21Config, n_train: int) -> Hybrid21Config:
        """``config`` with ``size="auto"`` resolved from ``n_train`` training samples (and its width);
        an explicit size is kept."""
        if config.size != "auto":
            return config
        size = size_for(n_train)
        return config.model_copy(update={"size": size, "hidden_size": SIZE_HIDDEN[size]})

    @classmethod
    def fit_config(cls, config: Hybrid21Config, train: TrainingWindows) -> Hybrid21Config:
        """``config`` fitted to the training windows ``train``: the size from their number
        (:meth:`sized`) and, with ``group_by="correlation"``, the symbol groups from their horizon-1
        targets (returns over a causal volatility, so a volatile stock does not dominate)."""
        config = cls.sized(config, len(train))
        if config.group_by != "correlation" or config.symbol_groups:
            return config
        arrays, rows = train.arrays, train.rows
        symbol = arrays.symbol[rows]
        groups = correlation_groups(
            symbol,
            arrays.day[rows],
            arrays.target[rows, 0],
            int(symbol.max(initial=0)) + 1,
            config.max_groups - 1,
        )
        return config.model_copy(update={"symbol_groups": groups})

    @torch.no_grad()
    def start_at_quantiles(self, values: Tensor) -> int:
        """The quantile head starts at ``values (H, Q)``; the volatility head at the scale they imply."""
        qs = self.sizes.quantiles
        sigma = (values[:, -1] - values[:, 0]) / (NormalDist().inv_cdf(qs[-1]) - NormalDist().inv_cdf(qs[0]))
        self.vol.bias.copy_(sigma.clamp(min=1e-3).log().to(self.vol.bias))
        self.vol.weight.mul_(0.1)
        return super().start_at_quantiles(values)

    def train(self, mode: bool = True) -> Self:
        """Switching mode starts new gate statistics (``predict`` calls ``eval()`` first, so after a
        walk-forward fold they cover exactly its test block)."""
        self._gate_sum = self._gate_rows = None
        return super().train(mode)

    def forward(self, batch: Batch) -> Tensor:
        x, valid, date, lead = _flat_inputs(batch)
        n = x.shape[0]
        group = self._groups(batch, n, x.device)
        static = self.static({k: batch[k].reshape(-1) for k in ("symbol", "sector") if k in batch})

        own = self._own(x, group, valid)
        group_ctx = masked_mean_by(own, date * self.cfg.max_groups + group, valid)
        g = _last_hidden(self.global_encoder, x).float()
        market = masked_mean_by(g, date, valid)
        global_ctx = torch.tanh(self.global_proj(torch.cat([g, market], -1))).float()
        sources = torch.stack([own, group_ctx, global_ctx], 1)  # 3 x (N, D) -> (N, 3, D)
        flat = sources.flatten(1)  # (N, 3, D) -> (N, 3*D)
        weights = torch.softmax(self.gate(with_static(flat, static)), -1)  # (N, 3)
        fused = (weights[..., None] * sources).sum(1)  # (N, D)
        hidden = self.shared(with_static(fused, static))
        pred = self.head(hidden)  # (N, H, Q)
        log_scale = self.vol(hidden).clamp(-_LOG_SCALE_BOUND, _LOG_SCALE_BOUND)
        self.last_outputs = {
            "gate_weights": weights,
            "trend_logits": self.trend(hidden),
            "vol_log_scale": log_scale,
            "group": group,
            "sources": sources,
        }
        if not self.training:
            self._track_gate(weights.detach(), valid)
        return pred.view(*lead, *pred.shape[1:])  # (N, H, Q) -> (..., H, Q)

    def _groups(self, batch: Batch, n: int, device: torch.device) -> Tensor:
        """``(N,)`` group of every row: by sector, or by the symbol's fitted correlation group."""
        key = "symbol" if self.cfg.group_by == "correlation" else "sector"
        ids = batch.get(key)
        ids = torch.zeros(n, dtype=torch.long, device=device) if ids is None else ids.reshape(-1)
        if key == "sector":
            return group_of(ids, self.cfg.max_groups)
        known = ids < len(self.symbol_group)
        return torch.where(known, self.symbol_group[ids.clamp(max=len(self.symbol_group) - 1)], 0)

    def _own(self, x: Tensor, group: Tensor, valid: Tensor) -> Tensor:
        """``(N, D)``: each valid row through its own group's encoder, once; zero for invalid rows."""
        own = x.new_zeros(x.shape[0], self.cfg.hidden_size)
        present = torch.unique(group[valid]).tolist()
        if not present:
            return own
        rows = [torch.nonzero(valid & (group == g)).squeeze(1) for g in present]
        parts = [
            _last_hidden(self.group_encoders[g], x[r]).float() for g, r in zip(present, rows, strict=True)
        ]
        return own.index_copy(0, torch.cat(rows), torch.cat(parts))

    def _track_gate(self, weights: Tensor, valid: Tensor) -> None:
        total = (weights.double() * valid[:, None]).sum(0)  # (3,)
        rows = valid.sum()
        self._gate_sum = total if self._gate_sum is None else self._gate_sum + total
        self._gate_rows = rows if self._gate_rows is None else self._gate_rows + rows

    def fusion_parameters(self) -> list[nn.Parameter]:
        """Gate, shared layer and heads: what staged training (``fusion_epochs``) trains alone first,
        the group and global encoders frozen."""
        parts = (self.gate, self.shared, self.head, self.trend, self.vol)
        return [p for part in parts for p in part.parameters()]

    def weight_table(self) -> dict[str, list[float]]:
        """Mean gate weight per source over the valid rows of the eval-mode forwards since the last mode
        switch (:meth:`train`), as ``{"own": [w], "group": [w], "global": [w]}``; ``{}`` when none. The
        walk-forward logs it per fold (``hybrid21.weight_<source>_by_fold``)."""
        if self._gate_sum is None or self._gate_rows is None or int(self._gate_rows) == 0:
            return {}
        mean = (self._gate_sum / self._gate_rows).cpu()
        return {name: [float(mean[i])] for i, name in enumerate(SOURCES)}

    def get_last_details(self) -> dict[str, Tensor]:
        details = super().get_last_details()
        details["trend_prob"] = torch.sigmoid(details.pop("trend_logits"))
        return details

    def loss(self, batch: Batch, criterion: Criterion) -> Tensor:
        pred, target, mask = flatten_for_loss(self(batch), batch)
        total = criterion(pred, target, mask=mask, aux=self.aux_outputs())
        valid = target.isfinite()
        if mask is not None:
            valid = valid & (mask.bool() if mask.dim() == 2 else mask.bool()[:, None])
        y = target.masked_fill(~valid, 0.0)
        if self.cfg.trend_weight > 0:
            logits = self.last_outputs["trend_logits"].float()
            bce = F.binary_cross_entropy_with_logits(logits, (y > 0).float(), reduction="none")
            total = total + self.cfg.trend_weight * _masked_mean(bce, valid)
        if self.cfg.vol_weight > 0:
            log_s = self.last_outputs["vol_log_scale"].float()
            nll = log_s + 0.5 * y.pow(2) * torch.exp(-2.0 * log_s)  # Gaussian NLL, constant dropped
            total = total + self.cfg.vol_weight * _masked_mean(nll, valid)
        return total


def _masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    return (values * valid).sum() / valid.sum().clamp(min=1)


def _flat_inputs(batch: Batch) -> tuple[Tensor, Tensor, Tensor, tuple[int, ...]]:
    """``x (N, T, F)`` (invalid rows zeroed), ``valid (N,)``, a date key ``(N,)`` and the lead shape."""
    x = batch["x"]
    lead = tuple(x.shape[:-2])  # (B,) or (D, N)
    n = x.shape[:-2].numel()
    x = x.reshape(n, *x.shape[-2:])  # (..., T, F) -> (N, T, F)
    node_mask = batch.get("node_mask")
    valid = (
        torch.ones(n, dtype=torch.bool, device=x.device)
        if node_mask is None
        else node_mask.reshape(-1).bool()
    )
    if len(lead) == 2:  # (D, N): the date is the first index
        date = torch.arange(lead[0], device=x.device).repeat_interleave(lead[1])  # (D,) -> (D*N,)
    elif "date" in batch:
        date = batch["date"].reshape(-1).long()
    else:  # one cross-section
        date = torch.zeros(n, dtype=torch.long, device=x.device)
    return x.masked_fill(~valid[:, None, None], 0.0).nan_to_num(), valid, date, lead
