"""A tiny learnable batch for model tests: each horizon's return is a fixed linear function of the last
step's features, plus noise. One copy for the contract and the model-part tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from stockml.models import ModelSizes


def make_batch(seed: int, b: int, t: int, sizes: ModelSizes) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, sizes.n_features, generator=g)
    w = torch.randn(sizes.n_features, sizes.horizon, generator=g) / sizes.n_features**0.5
    target = x[:, -1] @ w + 0.1 * torch.randn(b, sizes.horizon, generator=g)
    return {
        "x": x,
        "symbol": torch.randint(0, max(sizes.n_symbols, 1), (b,), generator=g),
        "sector": torch.randint(0, max(sizes.n_sectors, 1), (b,), generator=g),
        "target": target,
    }


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models: one torch thread avoids oversubscription on small CI machines. Autouse in every
    module that imports it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
