"""``diffusion``: a conditional denoising diffusion model (DDPM) over the H-step return path."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from stockml.models.base import Batch, Criterion, ForecastModel, ModelConfig, ModelSizes, median_index
from stockml.models.blocks import StaticEmbedding, sinusoidal_encoding, with_static


class DiffusionConfig(ModelConfig):
    n_steps: int = Field(default=50, ge=2)
    n_samples: int = Field(default=64, ge=2)
    schedule: Literal["linear", "cosine"] = "cosine"
    seed: int = 0
    clip_x0: float = Field(default=5.0, gt=0)  # clamp of the predicted clean path, in normalised units
    stats_momentum: float = Field(default=0.1, gt=0, le=1)


def noise_schedule(kind: str, n_steps: int) -> Tensor:
    """Betas ``(n_steps,)``. ``linear``: DDPM's 1e-4..0.02 over 1000 steps, rescaled by
    ``1000 / n_steps`` so short chains still end near pure noise; ``cosine``: Nichol & Dhariwal (2021)."""
    if kind == "linear":
        scale = 1000.0 / n_steps
        return torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), n_steps, dtype=torch.float64).float()
    s = 0.008
    steps = torch.arange(n_steps + 1, dtype=torch.float64) / n_steps
    alpha_bar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999).float()


class DiffusionModel(ForecastModel):
    """Context encoder (GRU over the window + symbol/sector embeddings) conditions an MLP that
    predicts the noise ``eps`` added to the (normalised) H-step target path.

    * Training objective (``loss``): epsilon prediction, ``|| eps - eps_theta(x_k, k, c) ||^2`` at a
      uniformly drawn step k; the criterion passed to ``loss`` is not used. Per-horizon running mean
      and std of the target (buffers, updated in training mode) normalise the path.
    * ``forward``: ancestral DDPM sampling of ``n_samples`` paths per row (no gradient), with a
      ``torch.Generator`` seeded from ``config.seed``: the same weights and batch always give the same
      output. Output quantiles are the empirical quantiles of the paths, sorted so they never cross.
    """

    config_class = DiffusionConfig
    betas: Tensor
    alpha_bar: Tensor
    target_mean: Tensor
    target_std: Tensor
    quantiles: Tensor

    def __init__(self, sizes: ModelSizes, config: DiffusionConfig | None = None):
        cfg = config or DiffusionConfig()
        super().__init__(sizes, cfg)
        self.cfg = cfg
        d, h = cfg.hidden_size, sizes.horizon
        self.static = StaticEmbedding(sizes, cfg)
        self.rnn = nn.GRU(sizes.n_features, d, batch_first=True)
        self.context = nn.Linear(d + self.static.out_dim, d)
        self.denoiser = nn.Sequential(
            nn.Linear(h + 2 * d, 2 * d), nn.SiLU(), nn.Linear(2 * d, 2 * d), nn.SiLU(), nn.Linear(2 * d, h)
        )
        betas = noise_schedule(cfg.schedule, cfg.n_steps)
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0), persistent=False)
        self.register_buffer("target_mean", torch.zeros(h))
        self.register_buffer("target_std", torch.ones(h))
        self.register_buffer("quantiles", torch.tensor(sizes.quantiles), persistent=False)

    def encode(self, batch: Batch) -> Tensor:
        """Context vector of the window: ``(B, d)``."""
        out, _ = self.rnn(batch["x"])
        return self.context(with_static(out[:, -1], self.static(batch)))

    def eps_theta(self, x_k: Tensor, k: Tensor, context: Tensor) -> Tensor:
        k_emb = sinusoidal_encoding(k, context.shape[-1])  # (B,) -> (B, d)
        return self.denoiser(torch.cat([x_k, k_emb, context], -1))

    def loss(self, batch: Batch, criterion: Criterion | None = None) -> Tensor:
        """Epsilon-prediction loss, masked by ``batch["mask"]`` ((B,) or (B, H)) when present."""
        target = batch["target"]
        valid = torch.ones_like(target, dtype=torch.bool) if "mask" not in batch else batch["mask"].bool()
        valid = (valid if valid.dim() == 2 else valid[:, None].expand_as(target)) & target.isfinite()
        if self.training:
            self._update_stats(target, valid)
        x0 = ((target - self.target_mean) / self.target_std).masked_fill(~valid, 0.0)
        k = torch.randint(0, self.cfg.n_steps, (target.shape[0],), device=target.device)
        eps = torch.randn_like(x0)
        ab = self.alpha_bar[k][:, None]
        x_k = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        err = (self.eps_theta(x_k, k, self.encode(batch)) - eps).pow(2)
        return err.masked_fill(~valid, 0.0).sum() / valid.sum().clamp(min=1)

    @torch.no_grad()
    def start_at_quantiles(self, values: Tensor) -> int:
        """No quantile head: the target statistics start at the median and the 5-95% spread / 3.29 of
        ``values (H, Q)`` (a normal's), so the first samples already have about the right scale."""
        levels = self.sizes.quantiles  # increasing
        z = NormalDist().inv_cdf(levels[-1]) - NormalDist().inv_cdf(levels[0])
        self.target_mean.copy_(values[:, median_index(levels)].to(self.target_mean))
        self.target_std.copy_(((values[:, -1] - values[:, 0]) / z).clamp_min(1e-6).to(self.target_std))
        return 0

    @torch.no_grad()
    def _update_stats(self, target: Tensor, valid: Tensor) -> None:
        n = valid.sum(0).clamp(min=1)
        y = target.masked_fill(~valid, 0.0)
        mean = y.sum(0) / n
        std = ((y - mean).masked_fill(~valid, 0.0).pow(2).sum(0) / n).sqrt().clamp(min=1e-6)
        m = self.cfg.stats_momentum
        self.target_mean.lerp_(mean, m)
        self.target_std.lerp_(std, m)

    @torch.no_grad()
    def sample(self, batch: Batch, n_samples: int | None = None) -> Tensor:
        """Sampled return paths ``(B, S, H)``, deterministic under ``config.seed``."""
        s = n_samples or self.cfg.n_samples
        context = self.encode(batch).repeat_interleave(s, dim=0)  # (B, d) -> (B*S, d)
        gen = torch.Generator(device=context.device).manual_seed(self.cfg.seed)
        x = torch.randn(context.shape[0], self.sizes.horizon, generator=gen, device=context.device)
        for step in reversed(range(self.cfg.n_steps)):
            k = torch.full((x.shape[0],), step, device=x.device)
            ab, beta = self.alpha_bar[step], self.betas[step]
            ab_prev = self.alpha_bar[step - 1] if step > 0 else torch.ones_like(ab)
            x0 = (x - (1 - ab).sqrt() * self.eps_theta(x, k, context)) / ab.sqrt()
            x0 = x0.clamp(-self.cfg.clip_x0, self.cfg.clip_x0)
            # posterior q(x_{k-1} | x_k, x0): mean and variance
            mean = (ab_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - ab_prev) * x) / (1 - ab)
            if step > 0:
                var = beta * (1 - ab_prev) / (1 - ab)
                x = mean + var.sqrt() * torch.randn(x.shape, generator=gen, device=x.device)
            else:
                x = mean
        paths = x.view(-1, s, self.sizes.horizon)  # (B*S, H) -> (B, S, H)
        return paths * self.target_std + self.target_mean

    def forward(self, batch: Batch) -> Tensor:
        paths = self.sample(batch)
        q = torch.quantile(paths, self.quantiles, dim=1)  # (Q, B, H)
        return q.permute(1, 2, 0).sort(dim=-1).values  # (Q, B, H) -> (B, H, Q)
