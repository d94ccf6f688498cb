"""Windows are exact slices of the normalised frame, inside one symbol and one split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from feature_helpers import synthetic_market
from torch.utils.data import DataLoader

from stockml.features import FeatureConfig, build_feature_frame, fit_normalizer, fit_symbol_vocab
from stockml.features.normalizer import transform_features
from stockml.training.cross_section import CrossSectionDataset
from stockml.training.splits import Segments
from stockml.training.windows import WindowArrays, WindowDataset, build_window_arrays, sample_rows, to_device

T = 15
H = 3


@pytest.fixture(scope="module")
def setup() -> tuple[pd.DataFrame, WindowArrays, Segments]:
    result = build_feature_frame(synthetic_market(n_symbols=5, n_days=220, seed=21), FeatureConfig(horizon=H))
    frame = result.frame.sample(frac=1.0, random_state=0)  # windows must not rely on the input order
    segments = Segments.from_fractions(frame["trade_date"], H, train=0.6, valid=0.2)
    start, end = segments.train.start.date(), segments.train.end.date()
    norm = fit_normalizer(
        frame, result.feature_columns, start, end, min_rows=20, label_columns=result.label_columns
    )
    arrays = build_window_arrays(frame, norm, fit_symbol_vocab(frame, start, end), result.feature_columns)
    return frame, arrays, segments


def test_a_sample_is_the_last_T_rows_of_its_symbol(
    setup: tuple[pd.DataFrame, WindowArrays, Segments],
) -> None:
    frame, arrays, segments = setup
    ds = WindowDataset.for_segment(arrays, T, segments.train)
    start, end = segments.train.start.date(), segments.train.end.date()
    norm_x = transform_features(frame, fit_normalizer(frame, arrays.feature_columns, start, end, min_rows=20))
    batch = ds.get_batch(np.array([0, len(ds) // 2, len(ds) - 1]))
    assert batch["x"].shape == (3, T, len(arrays.feature_columns)) and batch["x"].dtype == torch.float32
    for b in range(3):
        code, day = batch["ts_code"][b], pd.Timestamp(int(batch["date"][b]), unit="D")
        rows = frame.index.get_indexer(
            frame.loc[(frame["ts_code"] == code) & (frame["trade_date"] <= day)]
            .sort_values("trade_date")
            .tail(T)
            .index
        )
        np.testing.assert_array_equal(batch["x"][b].numpy(), norm_x[rows])
        expected = frame.loc[
            (frame["ts_code"] == code) & (frame["trade_date"] == day), ["label_h1", "label_h2", "label_h3"]
        ]
        np.testing.assert_allclose(batch["target"][b].numpy(), expected.to_numpy()[0], rtol=1e-6)
    assert not any(c.startswith("label_") for c in arrays.feature_columns)


def test_windows_stay_in_one_symbol_and_the_split(setup: tuple[pd.DataFrame, WindowArrays, Segments]) -> None:
    _, arrays, segments = setup
    for name, segment in segments.items():
        rows = sample_rows(arrays, T, segment)
        window = rows[:, None] + np.arange(-T + 1, 1)
        assert (arrays.ts_code[window] == arrays.ts_code[rows][:, None]).all()
        assert segment.mask(arrays.date[window]).all()
        assert np.isfinite(arrays.target[rows]).all()
        wider = sample_rows(arrays, T, segment, history_before_start=True)
        assert set(rows) <= set(wider) and segment.mask(arrays.date[wider]).all()
        if name != "train":  # later splits have history before their start to borrow
            assert len(wider) > len(rows)
    inference = sample_rows(arrays, T, segments.test, require_target=False)
    ds = WindowDataset(arrays, inference, T)
    batch = ds.get_batch(np.arange(len(ds)))
    unknown = ~batch["mask"]
    assert unknown.any() and (batch["target"][unknown] == 0).all()


def test_batches_shuffle_reproducibly_and_cover_every_sample(
    setup: tuple[pd.DataFrame, WindowArrays, Segments],
) -> None:
    _, arrays, segments = setup
    ds = WindowDataset.for_segment(arrays, T, segments.train)

    def order(seed: int) -> list[tuple[str, int]]:
        return [
            (c, int(d))
            for b in ds.iter_batches(64, shuffle=True, seed=seed)
            for c, d in zip(b["ts_code"], b["date"], strict=True)
        ]

    assert order(1) == order(1) != order(2)
    assert sorted(order(1)) == sorted(order(2)) and len(order(1)) == len(ds)
    assert sum(len(b["ts_code"]) for b in ds.iter_batches(64, drop_last=True)) == len(ds) // 64 * 64
    one = ds[5]
    assert one["x"].shape == (T, len(arrays.feature_columns)) and isinstance(one["ts_code"], str)
    loaded = next(iter(DataLoader(ds, batch_size=4)))
    torch.testing.assert_close(loaded["x"], ds.get_batch(np.arange(4))["x"])
    moved = to_device(ds.get_batch(np.arange(2)), "cpu")
    assert moved["symbol"].dtype == torch.int64 and moved["sector"].shape == (2,)


def test_cross_section_batches_a_whole_date(setup: tuple[pd.DataFrame, WindowArrays, Segments]) -> None:
    _, arrays, segments = setup
    cross = CrossSectionDataset(arrays, T, segments.valid)
    single = WindowDataset.for_segment(arrays, T, segments.valid)
    batch = cross.get_batch(np.arange(min(4, len(cross))))
    d, n = batch["node_mask"].shape
    assert batch["x"].shape == (d, n, T, len(arrays.feature_columns)) and n == cross.n_nodes == 5
    assert batch["target"].shape == (d, n, H) and (batch["mask"] <= batch["node_mask"][..., None]).all()
    assert (~batch["node_mask"]).any(), "a suspended or late symbol should be missing on some date"
    lookup = {
        (c, int(day)): i
        for i, (c, day) in enumerate(zip(arrays.ts_code[single.rows], arrays.day[single.rows], strict=True))
    }
    for b in range(d):
        for j, code in enumerate(batch["ts_code"]):
            key = (code, int(batch["date"][b]))
            assert bool(batch["node_mask"][b, j]) == (key in lookup)
            if key in lookup:
                torch.testing.assert_close(batch["x"][b, j], single[lookup[key]]["x"])
            else:
                assert (batch["x"][b, j] == 0).all() and batch["symbol"][b, j] == 0
    assert sum(1 for _ in cross.iter_batches(2)) == (len(cross) + 1) // 2
