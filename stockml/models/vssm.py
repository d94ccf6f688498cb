"""``vssm``: a variational state-space model with a regime-switching transition prior."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead
from stockml.models.blocks import GRN, StaticEmbedding

_LOGVAR_MIN, _LOGVAR_MAX = -8.0, 4.0


class VSSMConfig(ModelConfig):
    latent_size: int = Field(default=16, ge=1)
    n_regimes: int = Field(default=4, ge=1)


def gaussian_kl(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)), summed over the last dim."""
    ratio = (logvar_q - logvar_p).exp()
    return 0.5 * (ratio + (mu_q - mu_p).pow(2) / logvar_p.exp() - 1.0 - (logvar_q - logvar_p)).sum(-1)


class VSSMModel(ForecastModel):
    """Latent path ``z_1..z_T`` with a learned, regime-switching transition prior.

    * Prior ``p(z_t | z_{t-1}) = N(sum_k pi_k(z_{t-1}) f_k(z_{t-1}), diag var(z_{t-1}))`` where
      ``pi(z) = softmax(R z)`` is the regime head over K regimes and ``f_k`` one transition per regime.
    * Inference network: a GRU over the window (plus symbol/sector embeddings) gives ``h_t``;
      ``q(z_t | z_{t-1}, h_t)`` is Gaussian; ``z_t`` is drawn by reparameterisation while training and
      is the posterior mean in eval mode (deterministic predictions).
    * KL: sum over latent dims, mean over time and batch, of KL(q || p) along the path.
    * Forecast: roll the prior mean H steps ahead from ``z_T``; each future latent, with ``h_T`` and
      the regime probabilities, is read out to quantiles.

    ``aux_outputs()``/``get_last_details()``: ``kl`` (scalar), ``regime_probs`` (B, K) (regime of
    the first forecast step, sums to 1), ``regime_logits`` (B, K).
    """

    config_class = VSSMConfig
    default_loss = "ptft_vssm"

    def __init__(self, sizes: ModelSizes, config: VSSMConfig | None = None):
        cfg = config or VSSMConfig()
        super().__init__(sizes, cfg)
        d, dz, k, p = cfg.hidden_size, cfg.latent_size, cfg.n_regimes, cfg.dropout
        self.dz, self.k = dz, k
        self.static = StaticEmbedding(sizes, cfg)
        self.rnn = nn.GRU(sizes.n_features + self.static.out_dim, d, batch_first=True)
        self.drop = nn.Dropout(p)
        self.z0 = nn.Parameter(torch.zeros(dz))
        self.posterior = nn.Sequential(nn.Linear(dz + d, d), nn.Tanh(), nn.Linear(d, 2 * dz))
        self.regime = nn.Linear(dz, k)
        self.transitions = nn.Linear(dz, k * dz)
        self.prior_logvar = nn.Linear(dz, dz)
        self.horizon_emb = nn.Parameter(torch.randn(sizes.horizon, d) * 0.1)
        self.readout = GRN(dz + d + k, d, d, p)
        self.head = QuantileHead(d, sizes.horizon, sizes.quantiles, per_horizon=True)

    def prior(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Prior mean and log-variance of the next latent, and the regime logits, given ``z (B, dz)``."""
        logits = self.regime(z)
        per_regime = z[:, None] + torch.tanh(self.transitions(z)).view(-1, self.k, self.dz)  # (B, K, dz)
        mean = (torch.softmax(logits, -1)[..., None] * per_regime).sum(1)  # (B, dz)
        logvar = self.prior_logvar(z).clamp(_LOGVAR_MIN, _LOGVAR_MAX)
        return mean, logvar, logits

    def forward(self, batch: Batch) -> Tensor:
        x = batch["x"]
        b, t = x.shape[:2]
        static = self.static(batch)
        inp = x if static is None else torch.cat([x, static[:, None].expand(-1, t, -1)], -1)  # (B, T, F+E)
        h, _ = self.rnn(inp)  # (B, T, d)
        h = self.drop(h)

        z = self.z0.expand(b, -1)
        kl = x.new_zeros(b)
        for step in range(t):
            mu_p, logvar_p, _ = self.prior(z)
            mu_q, logvar_q = self.posterior(torch.cat([z, h[:, step]], -1)).chunk(2, dim=-1)
            logvar_q = logvar_q.clamp(_LOGVAR_MIN, _LOGVAR_MAX)
            kl = kl + gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)
            z = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q) if self.training else mu_q

        regime_logits = self.prior(z)[2]
        probs = torch.softmax(regime_logits, -1)
        future = []
        for _ in range(self.sizes.horizon):
            z = self.prior(z)[0]
            future.append(z)
        z_future = torch.stack(future, 1)  # H x (B, dz) -> (B, H, dz)
        horizon = self.sizes.horizon
        context = (h[:, -1, None] + self.horizon_emb).expand(b, horizon, -1)  # (B, H, d)
        feats = torch.cat([z_future, context, probs[:, None].expand(-1, horizon, -1)], -1)
        self.last_outputs = {"kl": kl.mean() / t, "regime_probs": probs, "regime_logits": regime_logits}
        return self.head(self.readout(feats))
