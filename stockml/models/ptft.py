"""``ptft``: a probabilistic Temporal Fusion Transformer (Lim et al., 2021) with quantile heads."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead
from stockml.models.blocks import (
    GRN,
    GateAddNorm,
    InterpretableMultiHeadAttention,
    ScalarVariableSelection,
    StaticEmbedding,
    VariableSelectionNetwork,
)


class PTFTConfig(ModelConfig):
    n_heads: int = Field(default=4, ge=1)
    variable_size: int = Field(default=8, ge=1)  # units of each feature's own small network


class PTFTModel(ForecastModel):
    """TFT over a past-only window, decoded at H learned horizon tokens.

    1. Symbol and sector embeddings pass a static variable selection network to a static vector ``s``.
    2. Four static context GRNs turn ``s`` into: the selection context, the enrichment context, and
       the LSTM's initial hidden and cell state.
    3. A variable selection network (conditioned on the selection context; each feature passes its own
       small network of ``variable_size`` units, see ``ScalarVariableSelection``) weights the
       F features at every step; an LSTM encoder reads the window and continues as a decoder over H learned
       horizon tokens; a gated skip, then static enrichment (a GRN with the enrichment context).
    4. Interpretable multi-head attention: each horizon token attends causally over the window and
       the earlier horizon tokens; gated skip, position-wise GRN, gated skip, quantile head.

    ``get_last_details()``: ``variable_weights`` (B, T, F) summing to 1 over F (feature importances),
    ``static_weights`` (B, n_static) when there are static variables, ``attention`` (B, H, T + H).
    """

    config_class = PTFTConfig

    def __init__(self, sizes: ModelSizes, config: PTFTConfig | None = None):
        cfg = config or PTFTConfig()
        super().__init__(sizes, cfg)
        d, p = cfg.hidden_size, cfg.dropout
        self.static = StaticEmbedding(sizes, cfg)
        if self.static.n_vars:
            self.static_proj = nn.Linear(cfg.embedding_dim, d)
            self.static_vsn: VariableSelectionNetwork | None = VariableSelectionNetwork(
                self.static.n_vars, d, p
            )
        else:
            self.static_vsn = None
            self.static_default = nn.Parameter(torch.zeros(d))
        self.contexts = nn.ModuleList(GRN(d, d, d, p) for _ in range(4))  # select, enrich, h0, c0
        self.vsn = ScalarVariableSelection(sizes.n_features, d, cfg.variable_size, p, d_context=d)
        self.encoder = nn.LSTM(d, d, batch_first=True)
        self.decoder = nn.LSTM(d, d, batch_first=True)
        self.horizon_tokens = nn.Parameter(torch.randn(sizes.horizon, d) * 0.1)
        self.post_lstm = GateAddNorm(d, d, p)
        self.enrich = GRN(d, d, d, p, d_context=d)
        self.attention = InterpretableMultiHeadAttention(d, cfg.n_heads, p)
        self.post_attention = GateAddNorm(d, d, p)
        self.position_wise = GRN(d, d, d, p)
        self.pre_head = GateAddNorm(d, d, p)
        self.head = QuantileHead(d, sizes.horizon, sizes.quantiles, per_horizon=True)

    def _static_vector(self, batch: Batch, b: int) -> tuple[Tensor, Tensor | None]:
        if self.static_vsn is None:
            return self.static_default.expand(b, -1), None
        parts = torch.stack([self.static_proj(e) for e in self.static.parts(batch)], dim=1)  # (B, S, d)
        return self.static_vsn(parts)

    def forward(self, batch: Batch) -> Tensor:
        x = batch["x"]
        b, t = x.shape[:2]
        static, static_weights = self._static_vector(batch, b)
        c_select, c_enrich, c_h, c_c = (grn(static) for grn in self.contexts)

        selected, var_weights = self.vsn(x, c_select)  # (B, T, d), (B, T, F)
        past, state = self.encoder(selected, (c_h[None].contiguous(), c_c[None].contiguous()))
        tokens = self.horizon_tokens.expand(b, -1, -1)  # (H, d) -> (B, H, d)
        future, _ = self.decoder(tokens, state)
        lstm_out = torch.cat([past, future], 1)  # (B, T+H, d)
        temporal = self.post_lstm(lstm_out, torch.cat([selected, tokens], 1))

        enriched = self.enrich(temporal, c_enrich)
        h = enriched.shape[1] - t
        causal = torch.ones(h, t + h, dtype=torch.bool, device=x.device).tril(diagonal=t)  # (H, T+H)
        attended, attn = self.attention(enriched[:, t:], enriched, enriched, mask=causal)
        out = self.post_attention(attended, enriched[:, t:])
        out = self.pre_head(self.position_wise(out), temporal[:, t:])  # (B, H, d)

        self.last_outputs = {"variable_weights": var_weights, "attention": attn}
        if static_weights is not None:
            self.last_outputs["static_weights"] = static_weights
        return self.head(out)

    def feature_importance(self) -> Tensor:
        """Mean variable-selection weight per feature over the last batch and window: ``(F,)``."""
        return self.last_outputs["variable_weights"].detach().mean(dim=(0, 1))
