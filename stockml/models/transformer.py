"""``transformer``: an encoder over the window, decoded by learned horizon queries."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead
from stockml.models.blocks import StaticEmbedding, sinusoidal_encoding


class TransformerConfig(ModelConfig):
    n_heads: int = Field(default=4, ge=1)
    encoder_layers: int = Field(default=2, ge=1)
    decoder_layers: int = Field(default=1, ge=1)


class TransformerModel(ForecastModel):
    """Transformer encoder over the T steps (sinusoidal positions); H learned horizon queries
    (plus the static embedding) cross-attend to the encoded window, one output vector per horizon.

    The decoder input is learned, never the (shifted) target: there is no teacher forcing.
    """

    config_class = TransformerConfig

    def __init__(self, sizes: ModelSizes, config: TransformerConfig | None = None):
        cfg = config or TransformerConfig()
        super().__init__(sizes, cfg)
        d = cfg.hidden_size
        if d % cfg.n_heads:
            raise ValueError(f"hidden_size {d} must be divisible by n_heads {cfg.n_heads}")
        self.d = d
        self.inp = nn.Linear(sizes.n_features, d)
        self.static = StaticEmbedding(sizes, cfg)
        self.static_proj = nn.Linear(self.static.out_dim, d) if self.static.out_dim else None
        # pre-norm layers train faster and more stably than post-norm at this size
        layer: dict[str, Any] = dict(
            d_model=d, nhead=cfg.n_heads, dim_feedforward=2 * d, dropout=cfg.dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(**layer, norm_first=True),
            cfg.encoder_layers,
            enable_nested_tensor=False,
        )
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(**layer, norm_first=True), cfg.decoder_layers
        )
        self.queries = nn.Parameter(torch.randn(sizes.horizon, d) * 0.1)
        self.head = QuantileHead(d, sizes.horizon, sizes.quantiles, per_horizon=True)

    def forward(self, batch: Batch) -> Tensor:
        x = batch["x"]
        b, t = x.shape[:2]
        pos = sinusoidal_encoding(torch.arange(t, device=x.device), self.d)  # (T, d)
        tokens = self.inp(x) + pos
        queries = self.queries.expand(b, -1, -1)  # (H, d) -> (B, H, d)
        static = self.static(batch)
        if self.static_proj is not None and static is not None:
            s = self.static_proj(static)[:, None]  # (B, d) -> (B, 1, d)
            tokens, queries = tokens + s, queries + s
        memory = self.encoder(tokens)  # (B, T, d)
        return self.head(self.decoder(queries, memory))  # (B, H, d) -> (B, H, Q)
