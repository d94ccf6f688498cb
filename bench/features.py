"""Wall time and peak memory to build features and windows for a synthetic market.

Default: 300 symbols x 2,500 trading days (about 10 years, ~750,000 bars) with adj_factor, an index,
stock_basic, monthly and daily macro series and sentiment. Run::

    .venv/bin/python bench/features.py [--symbols 300] [--days 2500]

Targets on a 2-core machine: under 30 s and under 4 GiB for features + windows.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from stockml.features import FeatureConfig, build_feature_frame, fit_normalizer, fit_symbol_vocab
from stockml.sources.base import MarketData
from stockml.training.cross_section import CrossSectionDataset
from stockml.training.splits import Segments
from stockml.training.windows import WindowDataset, build_window_arrays


def synthetic(n_symbols: int, n_days: int, seed: int = 0) -> MarketData:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2014-01-02", periods=n_days).astype("datetime64[ns]")
    codes = np.array([f"{600000 + i:06d}.SH" for i in range(n_symbols)])
    log_price = np.log(rng.uniform(5, 50, n_symbols)) + np.cumsum(
        rng.normal(0, 0.02, (n_days, n_symbols)), axis=0
    )
    factor = np.exp(np.cumsum(np.where(rng.random((n_days, n_symbols)) < 0.004, 0.03, 0.0), axis=0))
    keep = rng.random((n_days, n_symbols)) > 0.01  # suspensions
    sym, day = np.nonzero(keep.T)  # symbol-major, dates ascending within symbol
    lp, f = log_price[day, sym], factor[day, sym]
    close = np.exp(lp) / f
    first = np.r_[True, sym[1:] != sym[:-1]]
    prev_lp = np.where(first, lp - rng.normal(0, 0.02, len(lp)), np.r_[0.0, lp[:-1]])
    pre_close = np.exp(prev_lp) / f
    open_ = pre_close * np.exp(rng.normal(0, 0.01, len(lp)))
    vol = rng.lognormal(10, 0.5, len(lp))
    bars = pd.DataFrame(
        {
            "ts_code": codes[sym],
            "trade_date": dates[day],
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, len(lp)))),
            "low": np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, len(lp)))),
            "close": close,
            "pre_close": pre_close,
            "change": close - pre_close,
            "pct_chg": (close / pre_close - 1) * 100,
            "vol": vol,
            "amount": vol * close / 10,
        }
    )
    market = np.cumsum(rng.normal(0, 0.01, n_days))
    months = pd.date_range(dates[0] - pd.DateOffset(years=3), dates[-1], freq="ME")
    macro = pd.concat(
        [
            pd.DataFrame(
                {
                    "table": "cn_pmi_monthly",
                    "series": f"PMI:{k}",
                    "freq": "M",
                    "period_end": months,
                    "value": 50 + rng.normal(0, 1, len(months)),
                }
            )
            for k in range(4)
        ]
        + [
            pd.DataFrame(
                {
                    "table": "shibor",
                    "series": "on",
                    "freq": "D",
                    "period_end": dates,
                    "value": 2 + np.cumsum(rng.normal(0, 0.01, n_days)),
                }
            )
        ],
        ignore_index=True,
    )
    sample = rng.random(len(bars)) < 0.5
    return MarketData(
        bars=bars,
        adj_factor=pd.DataFrame({"ts_code": codes[sym], "trade_date": dates[day], "adj_factor": f}),
        index_daily=pd.DataFrame(
            {
                "ts_code": "000300.SH",
                "trade_date": dates,
                "close": 4000 * np.exp(market),
                "pct_chg": np.r_[0.0, np.expm1(np.diff(market))] * 100,
            }
        ),
        stock_basic=pd.DataFrame({"ts_code": codes, "industry": [f"ind{i % 28}" for i in range(n_symbols)]}),
        macro=macro.assign(period_end=macro["period_end"].astype("datetime64[ns]")),
        sentiment=bars.loc[sample, ["ts_code", "trade_date"]].assign(
            score=rng.normal(0, 1, int(sample.sum()))
        ),
    )


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--days", type=int, default=2500)
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()

    data = synthetic(args.symbols, args.days)
    print(f"bars: {len(data.bars):,} ({args.symbols} symbols x {args.days} days)")
    config = FeatureConfig()
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    result = build_feature_frame(data, config)
    times["features (incl. schema)"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    frame = result.frame
    segments = Segments.from_fractions(frame["trade_date"], config.horizon)
    train = segments.train
    norm = fit_normalizer(
        frame,
        result.feature_columns,
        train.start.date(),
        train.end.date(),
        method=config.norm_method,
        label_columns=result.label_columns,
    )
    symbols = fit_symbol_vocab(frame, train.start.date(), train.end.date())
    arrays = build_window_arrays(frame, norm, symbols, result.feature_columns)
    datasets = {
        name: WindowDataset.for_segment(arrays, config.lookback, rng) for name, rng in segments.items()
    }
    cross = CrossSectionDataset(arrays, config.lookback, segments.test)
    times["normalise + windows"] = time.perf_counter() - t1
    total = time.perf_counter() - t0

    t2 = time.perf_counter()
    n = 0
    for i, batch in enumerate(datasets["train"].iter_batches(512, shuffle=True, seed=0)):
        n += batch["x"].shape[0]
        if i + 1 >= args.batches:
            break
    times[f"{args.batches} shuffled train batches of 512"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    xs = cross.get_batch(np.arange(min(8, len(cross))))
    times["one cross-sectional batch of 8 dates"] = time.perf_counter() - t3

    print(
        f"feature frame: {frame.shape[0]:,} rows x {len(result.feature_columns)} features; "
        f"warm-up rows dropped {result.summary['warmup_rows_dropped']:,}"
    )
    print(
        "samples: "
        + ", ".join(f"{k} {len(v):,}" for k, v in datasets.items())
        + f"; cross-section dates (test) {len(cross)}, x {tuple(xs['x'].shape)}"
    )
    for name, seconds in times.items():
        print(f"{name:>40}: {seconds:6.2f} s")
    print(f"{'features + windows total':>40}: {total:6.2f} s")
    print(f"{'peak RSS':>40}: {peak_rss_gib():6.2f} GiB")


if __name__ == "__main__":
    main()
