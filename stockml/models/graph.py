"""``graph``: stocks are nodes; a temporal encoder per stock, then message passing across stocks."""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor, nn

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead
from stockml.models.blocks import StaticEmbedding


class GraphConfig(ModelConfig):
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)  # weight of learned similarity vs data-driven part
    sector_prior: float = Field(default=1.0, ge=0.0)  # logit bonus for a same-sector pair
    corr_temperature: float = Field(default=0.5, gt=0.0)
    corr_feature: int | None = None  # column used for the dynamic correlation; None = all columns
    n_layers: int = Field(default=2, ge=1)


class GraphModel(ForecastModel):
    """Cross-sectional graph network.

    Input ``x (D, N, T, F)`` (D dates, N symbols), ``symbol``/``sector (D, N)``, optional ``node_mask
    (D, N)`` (False = symbol missing that day); output ``(D, N, H, Q)``. A plain ``(B, T, F)`` batch
    gives ``(B, H, Q)``: its rows exchange messages only with rows of the same ``date`` (B,) when the
    batch has one (so a batch may hold several whole dates), else the batch is ONE cross-section.

    Per date: a GRU encodes each stock's window to ``h_i``. The adjacency is
    ``alpha * softmax_j(e_i . e_j / sqrt(d))
    + (1 - alpha) * softmax_j(corr_ij / tau + prior * same_sector_ij)``,
    each softmax over the valid nodes j (plus i itself), where ``e`` is a learned node embedding (a
    projection of ``h`` plus the symbol embedding) and ``corr`` the correlation of the stocks' windows
    (column ``corr_feature``, or all columns averaged). Each layer:
    ``h <- LayerNorm(h + MLP([h, A h]))``. Masked nodes are zeroed and never send messages, so they
    cannot influence the valid nodes. ``get_last_details()["adjacency"]`` is ``(D, N, N)``.
    """

    config_class = GraphConfig
    cross_sectional = True  # messages between the rows of one date

    def __init__(self, sizes: ModelSizes, config: GraphConfig | None = None):
        cfg = config or GraphConfig()
        super().__init__(sizes, cfg)
        self.cfg = cfg
        d = cfg.hidden_size
        if cfg.corr_feature is not None and not 0 <= cfg.corr_feature < sizes.n_features:
            raise ValueError(f"corr_feature {cfg.corr_feature} is not a column of x")
        self.static = StaticEmbedding(sizes, cfg)
        self.rnn = nn.GRU(sizes.n_features, d, batch_first=True)
        self.node_proj = nn.Linear(d, d)
        self.symbol_proj = nn.Linear(self.static.out_dim, d) if self.static.out_dim else None
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(d, d))
            for _ in range(cfg.n_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(cfg.n_layers))
        self.head = QuantileHead(d, sizes.horizon, sizes.quantiles)

    def forward(self, batch: Batch) -> Tensor:
        x = batch["x"]
        plain = x.dim() == 3
        same_date = None
        if plain:  # (B, T, F) -> one cross-section (1, B, T, F), messages only within a date
            if "date" in batch:
                date = batch["date"]
                same_date = (date[:, None] == date[None, :])[None]  # (1, B, B)
            batch = {k: v[None] for k, v in batch.items() if k in ("x", "symbol", "sector", "node_mask")}
            x = batch["x"]
        d_, n, t, f = x.shape
        valid = batch.get("node_mask")
        valid = torch.ones(d_, n, dtype=torch.bool, device=x.device) if valid is None else valid.bool()
        x = x.masked_fill(~valid[..., None, None], 0.0).nan_to_num()

        out, _ = self.rnn(x.reshape(d_ * n, t, f))  # (D, N, T, F) -> (D*N, T, F) -> (D*N, T, d)
        h = out[:, -1].view(d_, n, -1).masked_fill(~valid[..., None], 0.0)  # (D, N, d)
        adjacency = self._adjacency(h, x, batch, valid, same_date)
        for layer, norm in zip(self.layers, self.norms, strict=True):
            h = norm(h + layer(torch.cat([h, adjacency @ h], -1)))
            h = h.masked_fill(~valid[..., None], 0.0)
        self.last_outputs = {"adjacency": adjacency}
        pred = self.head(h.reshape(d_ * n, -1))  # (D*N, d) -> (D*N, H, Q)
        pred = pred.view(d_, n, *pred.shape[1:])  # (D*N, H, Q) -> (D, N, H, Q)
        return pred[0] if plain else pred

    def _adjacency(
        self, h: Tensor, x: Tensor, batch: Batch, valid: Tensor, same_date: Tensor | None
    ) -> Tensor:
        n = h.shape[1]
        eye = torch.eye(n, dtype=torch.bool, device=h.device)
        allowed = valid[:, None, :] | eye  # (D, N, N): column j valid, or j == i
        if same_date is not None:
            allowed = allowed & same_date

        e = self.node_proj(h)
        static = self.static(batch)
        if self.symbol_proj is not None and static is not None:
            e = e + self.symbol_proj(static)
        learned = e @ e.transpose(1, 2) / math.sqrt(e.shape[-1])  # (D, N, N)

        col = self.cfg.corr_feature
        series = x if col is None else x[..., col : col + 1]  # (D, N, T, F')
        z = series - series.mean(dim=2, keepdim=True)
        z = z / z.pow(2).mean(dim=2, keepdim=True).add(1e-6).sqrt()  # standardised over time
        corr = torch.einsum("ditf,djtf->dij", z, z) / (z.shape[2] * z.shape[3])  # (D, N, N)
        logits = corr / self.cfg.corr_temperature
        if "sector" in batch:
            sector = batch["sector"]
            same = (sector[:, :, None] == sector[:, None, :]) & (sector[:, :, None] > 0)
            logits = logits + self.cfg.sector_prior * same.float()

        alpha = self.cfg.alpha
        a_learned = torch.softmax(learned.masked_fill(~allowed, float("-inf")), -1)
        a_data = torch.softmax(logits.masked_fill(~allowed, float("-inf")), -1)
        return alpha * a_learned + (1 - alpha) * a_data
