"""Building blocks shared by the models: embeddings, causal convolutions, encodings, TFT blocks."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from stockml.models.base import Batch, ModelConfig, ModelSizes


class StaticEmbedding(nn.Module):
    """Learned symbol and sector embeddings (index 0 = unknown, a fixed zero vector).

    A vocabulary of size 0, or ``config.use_embeddings=False``, gives no embedding; ``out_dim`` is
    then 0 and ``forward`` returns ``None``, so models work with or without static covariates.
    """

    def __init__(self, sizes: ModelSizes, config: ModelConfig):
        super().__init__()
        dim = config.embedding_dim
        use = config.use_embeddings
        self.symbol = nn.Embedding(sizes.n_symbols, dim, padding_idx=0) if use and sizes.n_symbols else None
        self.sector = nn.Embedding(sizes.n_sectors, dim, padding_idx=0) if use and sizes.n_sectors else None
        self.n_vars = int(self.symbol is not None) + int(self.sector is not None)
        self.out_dim = dim * self.n_vars

    def parts(self, batch: Batch) -> list[Tensor]:
        """One ``(..., E)`` tensor per static variable present (symbol first, then sector)."""
        out = []
        if self.symbol is not None:
            out.append(self.symbol(batch["symbol"]))
        if self.sector is not None:
            out.append(self.sector(batch["sector"]))
        return out

    def forward(self, batch: Batch) -> Tensor | None:
        parts = self.parts(batch)
        return torch.cat(parts, dim=-1) if parts else None


def with_static(h: Tensor, static: Tensor | None) -> Tensor:
    """Concatenate the static embedding (if any) onto a ``(B, D)`` representation."""
    return h if static is None else torch.cat([h, static], dim=-1)


class CausalConvBlock(nn.Module):
    """TCN residual block: two dilated causal convolutions with weight norm, ReLU and dropout.

    Left padding of ``(kernel - 1) * dilation`` keeps the output at step t a function of steps <= t.
    Input and output are ``(B, C, T)``.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv1 = weight_norm(nn.Conv1d(c_in, c_out, kernel, dilation=dilation))
        self.conv2 = weight_norm(nn.Conv1d(c_out, c_out, kernel, dilation=dilation))
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.drop(F.relu(self.conv1(F.pad(x, (self.pad, 0)))))
        h = self.drop(F.relu(self.conv2(F.pad(h, (self.pad, 0)))))
        return F.relu(h + self.skip(x))


def sinusoidal_encoding(positions: Tensor, dim: int) -> Tensor:
    """Sinusoidal features of (possibly fractional) positions: ``(...,)`` -> ``(..., dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=positions.device) / max(half, 1))
    angles = positions.float()[..., None] * freqs  # (...,) -> (..., half)
    enc = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(enc, (0, dim - 2 * half))


class GLU(nn.Module):
    """Gated linear unit: ``sigmoid(W1 x) * (W2 x)``; lets a block switch itself off."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.proj = nn.Linear(d_in, 2 * d_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.glu(self.proj(x), dim=-1)


class GateAddNorm(nn.Module):
    """Gated skip connection: ``LayerNorm(skip + GLU(dropout(x)))``."""

    def __init__(self, d_in: int, d_out: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.glu = GLU(d_in, d_out)
        self.norm = nn.LayerNorm(d_out)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.norm(skip + self.glu(self.drop(x)))


class GRN(nn.Module):
    """Gated residual network (Lim et al., 2021), with an optional context vector.

    ``eta2 = ELU(W2 x + W3 c)``, ``eta1 = W1 eta2``, ``out = LayerNorm(skip(x) + GLU(eta1))``.
    ``context`` is ``(B, C)`` and is broadcast over any middle dims of ``x (B, ..., D)``.
    """

    def __init__(self, d_in: int, d_hidden: int, d_out: int, dropout: float, d_context: int = 0):
        super().__init__()
        self.fc2 = nn.Linear(d_in, d_hidden)
        self.ctx = nn.Linear(d_context, d_hidden, bias=False) if d_context else None
        self.fc1 = nn.Linear(d_hidden, d_hidden)
        self.gate = GateAddNorm(d_hidden, d_out, dropout)
        self.skip = nn.Linear(d_in, d_out) if d_in != d_out else nn.Identity()

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        h = self.fc2(x)
        if self.ctx is not None and context is not None:
            c = self.ctx(context)
            h = h + c.view(c.shape[0], *([1] * (x.dim() - 2)), c.shape[-1])  # (B, D) -> (B, 1.., D)
        h = self.fc1(F.elu(h))
        return self.gate(h, self.skip(x))


class VariableSelectionNetwork(nn.Module):
    """Soft selection over V input variables, each already embedded to ``d``.

    Input ``(B, ..., V, d)``; returns the weighted sum ``(B, ..., d)`` of per-variable GRN outputs
    and the selection weights ``(B, ..., V)``, which sum to 1 over V (feature importances). The
    per-variable GRN is shared across variables (the embeddings are already variable-specific),
    which keeps the cost flat in V.
    """

    def __init__(self, n_vars: int, d: int, dropout: float, d_context: int = 0):
        super().__init__()
        self.n_vars = n_vars
        self.weights_grn = GRN(n_vars * d, d, n_vars, dropout, d_context)
        self.var_grn = GRN(d, d, d, dropout)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        flat = x.flatten(-2)  # (B, ..., V, d) -> (B, ..., V*d)
        weights = torch.softmax(self.weights_grn(flat, context), dim=-1)  # (B, ..., V)
        processed = self.var_grn(x)  # (B, ..., V, d)
        return (weights[..., None] * processed).sum(dim=-2), weights


class ScalarVariableSelection(nn.Module):
    """Variable selection over F real-valued inputs ``x (B, ..., F)``, at a cost flat in the model width.

    Each variable has its own small network: ``xi_f = ELU(x_f * w_f + b_f)`` (``d_var`` units) and a
    linear map ``P_f`` to ``d``. Selection weights come from a GRN over all the variables' units (with
    the optional context); the output is ``sum_f w_f * P_f(xi_f)``, computed as one matmul over the
    weighted, flattened units, so no ``(B, ..., F, d)`` tensor is ever built (the shared per-variable
    GRN of a textbook TFT at width ``d`` cost 12x the time of an LSTM step here). Returns ``(B, ..., d)``
    and the weights ``(B, ..., F)``, which sum to 1 over F (feature importances).
    """

    def __init__(self, n_vars: int, d: int, d_var: int, dropout: float, d_context: int = 0):
        super().__init__()
        self.unit_weight = nn.Parameter(torch.randn(n_vars, d_var))
        self.unit_bias = nn.Parameter(torch.randn(n_vars, d_var) * 0.5)
        self.weights_grn = GRN(n_vars * d_var, d, n_vars, dropout, d_context)
        self.project = nn.Linear(n_vars * d_var, d)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        units = F.elu(x[..., None] * self.unit_weight + self.unit_bias)  # (B, ..., F) -> (B, ..., F, dv)
        weights = torch.softmax(self.weights_grn(units.flatten(-2), context), dim=-1)  # (B, ..., F)
        return self.project((weights[..., None] * units).flatten(-2)), weights


class InterpretableMultiHeadAttention(nn.Module):
    """TFT attention: per-head queries and keys, one value projection shared by all heads.

    Head outputs are averaged (not concatenated), so the averaged attention matrix
    ``(B, Tq, Tk)`` is a single, interpretable weighting over time steps.
    """

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads, self.d_head = n_heads, max(d // n_heads, 1)
        self.q = nn.Linear(d, n_heads * self.d_head)
        self.k = nn.Linear(d, n_heads * self.d_head)
        self.v = nn.Linear(d, self.d_head)
        self.out = nn.Linear(self.d_head, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b, tq, tk = q.shape[0], q.shape[1], k.shape[1]
        qh = self.q(q).view(b, tq, self.n_heads, self.d_head).transpose(1, 2)  # -> (B, nh, Tq, dh)
        kh = self.k(k).view(b, tk, self.n_heads, self.d_head).transpose(1, 2)  # -> (B, nh, Tk, dh)
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(self.d_head)  # (B, nh, Tq, Tk)
        if mask is not None:  # mask: (Tq, Tk) bool, True = may attend
            scores = scores.masked_fill(~mask, float("-inf"))
        attn = self.drop(torch.softmax(scores, dim=-1))
        heads = attn @ self.v(v)[:, None]  # (B, nh, Tq, dh)
        return self.out(heads.mean(dim=1)), attn.mean(dim=1)
