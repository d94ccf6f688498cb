"""Feature families: found on the real A-share frame, carried in the model sizes, one branch each in
``multibranch``."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from feature_helpers import load_ashare_sample

from stockml.features import FeatureConfig, FeatureResult, build_feature_frame
from stockml.models import ModelSizes, build_model
from stockml.models.multibranch import feature_families
from stockml.training.config import EvalConfig
from stockml.training.splits import DateRange
from stockml.training.walkforward import fit_on_window

EXPECTED = {  # column indices of the default frame of ashare_sample (68 features)
    "price": [0, 1, 2, 3, 7],  # logret_1/5/10/20, amplitude
    "volatility": [4, 5, 6, 10, 11, 12, 13, 14],  # rv_5/20/60, then the five of vol_features.py
    "volume": [8, 9],  # vol_z, amount_z
    "indicator": list(range(15, 36)),
    "market": [36, 37, 38],
    "macro": list(range(39, 68)),
}


@pytest.fixture(scope="module")
def real() -> FeatureResult:
    return build_feature_frame(load_ashare_sample(), FeatureConfig())


@pytest.fixture(scope="module")
def real_sizes(real: FeatureResult) -> ModelSizes:
    window = DateRange(pd.Timestamp("2021-01-04"), pd.Timestamp("2022-12-30"))
    cfg = EvalConfig(horizon=5)
    *_, sizes = fit_on_window(
        real.frame, real.feature_columns, real.label_columns, window, cfg, real.sector_vocab.size
    )
    return sizes


def test_sizes_fitted_on_a_real_frame_carry_its_feature_families(
    real: FeatureResult, real_sizes: ModelSizes
) -> None:
    assert real_sizes.feature_groups == EXPECTED
    cols = real.feature_columns
    assert [cols[i] for i in EXPECTED["volatility"]] == [
        "rv_5", "rv_20", "rv_60",
        "vol_ewma", "vol_ewma_log_xs", "downside_vol_20", "vol_of_vol_60", "ret_1_std",
    ]  # fmt: skip
    assert "other" not in real_sizes.feature_groups  # every real column has a family


def test_multibranch_feeds_each_branch_its_familys_columns(real_sizes: ModelSizes) -> None:
    torch.manual_seed(0)
    model = build_model("multibranch", real_sizes, {"hidden_size": 8, "embedding_dim": 2}).eval()
    assert list(model.branches) == list(EXPECTED)
    seen: dict[str, torch.Tensor] = {}
    for name, rnn in model.branches.items():
        rnn.register_forward_hook(lambda _m, inputs, _out, name=name: seen.__setitem__(name, inputs[0]))
    x = torch.randn(3, 10, real_sizes.n_features)
    batch = {"x": x, "symbol": torch.tensor([1, 2, 3]), "sector": torch.tensor([0, 1, 2])}
    with torch.no_grad():
        out = model(batch)
    assert out.shape == (3, 5, len(real_sizes.quantiles))
    for name, cols in EXPECTED.items():
        assert torch.equal(seen[name], x[..., cols]), name


def test_multibranch_falls_back_without_or_with_partial_groups() -> None:
    halves = feature_families(ModelSizes(n_features=5, horizon=2))  # sizes by hand, old bundles
    assert halves == {"price": [0, 1], "indicator": [2, 3, 4]}
    assert feature_families(ModelSizes(n_features=1, horizon=2)) == {"all": [0]}
    partial = ModelSizes(n_features=5, horizon=2, feature_groups={"price": [0, 3], "volatility": [1]})
    assert feature_families(partial) == {"price": [0, 3], "volatility": [1], "other": [2, 4]}
    model = build_model("multibranch", partial, {"hidden_size": 4, "use_embeddings": False})
    inputs = {name: rnn.input_size for name, rnn in model.branches.items()}
    assert inputs == {"price": 2, "volatility": 1, "other": 2}
