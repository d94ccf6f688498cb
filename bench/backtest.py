"""Speed of the portfolio backtest on a synthetic market: 300 symbols x 5 years, top-30 drop-5.

    python bench/backtest.py
    python bench/backtest.py --symbols 1000 --days 2500 --top-k 50 --drop-n 5
    python bench/backtest.py --weighting inverse_vol --var-budget 0.02

Builds seeded bars (random walks clipped at each board's daily limit, about 1 % suspended days) and
horizon-1 quantile forecasts that carry a little of the next day's return, then times
``run_backtest`` (the model's book and both bounds) and prints the seconds and the main metrics.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from stockml.backtest.config import BacktestConfig, StrategyConfig
from stockml.backtest.run import run_backtest
from stockml.columns import quantile_column

LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
Z = (-1.645, -1.2816, -0.6745, 0.0, 0.6745, 1.2816, 1.645)


def synthetic_codes(n: int) -> list[str]:
    """Main-board, ChiNext and STAR codes in the ratio 4:1:1."""
    codes = []
    for i in range(n):
        kind = i % 6
        if kind == 4:
            codes.append(f"300{i:03d}.SZ")
        elif kind == 5:
            codes.append(f"688{i:03d}.SH")
        else:
            codes.append(f"{600000 + i}.SH" if i % 2 else f"{i:06d}.SZ")
    return codes


def synthetic_bars(codes: list[str], days: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    n, d = len(codes), len(days)
    limit = np.array([0.2 if c.startswith(("300", "688")) else 0.1 for c in codes])
    market = rng.normal(0.0002, 0.012, size=(d, 1))
    vol = rng.uniform(0.01, 0.03, size=(1, n))
    simple = np.clip(np.expm1(market + rng.normal(0.0, 1.0, size=(d, n)) * vol), -limit, limit)  # (D, N)
    close = np.empty((d, n))
    prev = rng.uniform(5.0, 50.0, size=n)
    pre_close = np.empty((d, n))
    for t in range(d):  # prices in fen, each day from the last close
        pre_close[t] = prev
        close[t] = np.maximum(np.round(prev * (1.0 + simple[t]), 2), 0.01)
        prev = close[t]
    gap = np.clip(rng.normal(0.0, 0.005, size=(d, n)), -limit, limit)
    open_ = np.round(pre_close * (1.0 + gap), 2)
    volume = np.where(rng.random((d, n)) < 0.01, 0.0, rng.uniform(1e4, 1e6, size=(d, n)))
    return pd.DataFrame(
        {
            "ts_code": np.tile(codes, d),
            "trade_date": np.repeat(days, n),
            "open": open_.ravel(),
            "high": np.maximum(open_, close).ravel(),
            "low": np.minimum(open_, close).ravel(),
            "close": close.ravel(),
            "pre_close": pre_close.ravel(),
            "vol": volume.ravel(),
        }
    )


def synthetic_predictions(bars: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Horizon-1 forecasts made at each close but the last: a tenth of the next day's log return, noisy."""
    wide = bars.pivot(index="trade_date", columns="ts_code", values="close")
    nxt = np.log(wide.shift(-1) / wide).iloc[:-1]  # (D-1, N): the next day's log return
    signal = 0.1 * nxt.to_numpy() + rng.normal(0.0, 0.03, size=nxt.shape)  # rank IC about 0.07
    median = 0.1 * signal  # medians of a few tenths of a percent, well inside the interval
    sd = np.broadcast_to(rng.uniform(0.01, 0.03, size=(1, nxt.shape[1])), nxt.shape)
    frame = pd.DataFrame(
        {
            "ts_code": np.tile(nxt.columns.to_numpy(), len(nxt)),
            "date": np.repeat(nxt.index.to_numpy(), nxt.shape[1]),
            "horizon": 1,
        }
    )
    for level, z in zip(LEVELS, Z, strict=True):
        frame[quantile_column(level)] = (median + z * sd).ravel()
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--days", type=int, default=1250)
    parser.add_argument("--top-k", type=int, default=30)
    parser.add_argument("--drop-n", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weighting", choices=("equal", "inverse_vol"), default="equal")
    parser.add_argument("--var-budget", type=float, default=None, help="also resizes held names daily")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    days = pd.bdate_range("2019-01-02", periods=args.days)
    bars = synthetic_bars(synthetic_codes(args.symbols), days, rng)
    predictions = synthetic_predictions(bars, rng)
    strategy = StrategyConfig(
        top_k=args.top_k,
        drop_n=args.drop_n,
        weighting=args.weighting,
        var_budget=args.var_budget,
        resize_held=args.var_budget is not None,
    )
    cfg = BacktestConfig(strategy=strategy)

    start = time.perf_counter()
    result = run_backtest(predictions, bars, cfg)
    seconds = time.perf_counter() - start
    print(
        f"symbols={args.symbols} days={args.days} top_k={args.top_k} drop_n={args.drop_n} "
        f"weighting={args.weighting} var_budget={args.var_budget}"
    )
    print(f"backtest seconds (model book + perfect + random bounds): {seconds:.2f}")
    for key in ("annual_return", "sharpe", "max_drawdown", "turnover", "cost_drag", "information_ratio"):
        print(f"  {key:<22}{result.metrics[key]:+.4f}")
    for key in ("perfect_annual_return", "random_annual_return"):
        print(f"  {key:<22}{result.metrics[key]:+.4f}")


if __name__ == "__main__":
    main()
