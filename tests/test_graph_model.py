"""The graph model on true cross-sectional batches (D dates x N symbols), with missing symbols."""

from __future__ import annotations

import torch
from model_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

from stockml.losses import PinballLoss
from stockml.models import ModelSizes, build_model

SIZES = ModelSizes(n_features=8, horizon=5, n_symbols=12, n_sectors=4)


def cross_section(seed: int = 0, d: int = 3, n: int = 6, t: int = 20) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    node_mask = torch.ones(d, n, dtype=torch.bool)
    node_mask[0, 2] = node_mask[1, 4] = node_mask[2, 0] = False
    return {
        "x": torch.randn(d, n, t, 8, generator=g),
        "symbol": torch.arange(1, n + 1).repeat(d, 1),
        "sector": torch.tensor([1, 1, 2, 2, 3, 3]).repeat(d, 1),
        "target": torch.randn(d, n, 5, generator=g),
        "node_mask": node_mask,
    }


def build(config: dict | None = None):
    torch.manual_seed(0)
    return build_model("graph", SIZES, config).eval()


def test_cross_sectional_output_shape_and_order():
    out = build()(cross_section())
    assert out.shape == (3, 6, 5, 7)
    assert torch.isfinite(out).all()
    assert (out.diff(dim=-1) >= 0).all()


def test_masked_nodes_do_not_influence_the_others():
    model, batch = build(), cross_section()
    changed = {**batch, "x": batch["x"].clone()}
    changed["x"][0, 2] = 100.0  # a missing symbol with garbage data...
    changed["x"][1, 4] = float("nan")  # ...or with none at all
    before, after = model(batch), model(changed)
    valid = batch["node_mask"]
    assert torch.equal(before[valid], after[valid])
    assert torch.isfinite(after[valid]).all()


def test_valid_nodes_do_exchange_messages():
    model, batch = build(), cross_section()
    changed = {**batch, "x": batch["x"].clone()}
    changed["x"][0, 1] += 3.0  # a valid node on date 0
    before, after = model(batch), model(changed)
    others = [0, 3, 4, 5]  # valid nodes of date 0 other than node 1
    assert not torch.allclose(before[0, others], after[0, others])
    assert torch.equal(before[1:], after[1:])  # dates are independent cross-sections


def test_adjacency_rows_are_distributions_over_valid_nodes():
    model, batch = build(), cross_section()
    model(batch)
    adjacency = model.get_last_details()["adjacency"]
    assert adjacency.shape == (3, 6, 6)
    assert torch.allclose(adjacency.sum(-1), torch.ones(3, 6), atol=1e-6)
    assert torch.all(adjacency[0, [0, 1, 3, 4, 5], 2] == 0)  # nobody listens to the missing node


def test_sector_prior_and_alpha_shape_the_adjacency():
    batch = cross_section()
    data_only = build({"alpha": 0.0, "sector_prior": 5.0})
    data_only(batch)
    adjacency = data_only.get_last_details()["adjacency"][1]  # date 1: node 4 missing
    assert adjacency[0, 1] > adjacency[0, 3]  # node 0 and 1 share sector 1
    without_prior, with_prior = (
        build({"alpha": 1.0, "sector_prior": 0.0}),
        build({"alpha": 1.0, "sector_prior": 5.0}),
    )
    without_prior(batch)
    with_prior(batch)
    adjacencies = [m.get_last_details()["adjacency"] for m in (without_prior, with_prior)]
    assert torch.equal(*adjacencies)  # alpha = 1: only the learned similarity is used


def test_plain_batch_is_one_cross_section():
    model, batch = build(), cross_section()
    plain = {"x": batch["x"][1], "symbol": batch["symbol"][1], "sector": batch["sector"][1]}
    full = model({k: v for k, v in batch.items() if k != "node_mask"})
    assert torch.allclose(model(plain), full[1], atol=1e-6)


def test_loss_ignores_missing_nodes():
    model, batch = build(), cross_section()
    batch["target"][~batch["node_mask"]] = float("nan")  # no label for missing symbols
    model.train()
    loss = model.loss(batch, PinballLoss(SIZES.quantiles))
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
