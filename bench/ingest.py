"""Ingest throughput: a `local` ingest of a large tushare-format folder vs a plain read_csv + to_parquet.

Usage: python bench/ingest.py [--symbols 300] [--years 10] [--flow]

Writes one newest-first CSV per ts_code (as tushare exports them) from the demo market into a
temporary folder, then times (a) the plain copy: read every CSV with pandas and write one parquet
file, and (b) stockml's ingest of the same folder: read + normalise, validate (pandera, lazy), and
upsert into an empty lake. With --flow it also times the Prefect backfill flow (one chunk).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import pandas as pd

from stockml.columns import BAR_COLS
from stockml.sources.demo import DemoConfig, DemoSource
from stockml.sources.local import LocalSource
from stockml.store.ingest import validate_batch, write_batch
from stockml.store.lake import Lake


def write_tushare_folder(root: Path, n_symbols: int, years: int) -> tuple[int, dt.date, dt.date]:
    start, end = dt.date(2024 - years + 1, 1, 1), dt.date(2024, 12, 31)
    bars = DemoSource(DemoConfig(n_symbols=n_symbols, start=start, end=end)).fetch(start, end).bars
    bars = bars[list(BAR_COLS)].assign(trade_date=bars["trade_date"].dt.strftime("%Y%m%d"))
    (root / "daily").mkdir(parents=True)
    for code, frame in bars.groupby("ts_code"):
        frame.iloc[::-1].to_csv(root / "daily" / f"{code}.csv", index=False)
    return len(bars), start, end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--flow", action="store_true", help="also time the Prefect backfill flow")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows, start, end = write_tushare_folder(root / "src", args.symbols, args.years)
        print(f"folder: {args.symbols} CSV files, {rows:,} bars, {start}..{end}")

        t0 = time.perf_counter()
        frames = [pd.read_csv(p) for p in sorted((root / "src" / "daily").glob("*.csv"))]
        pd.concat(frames, ignore_index=True).to_parquet(root / "plain.parquet")
        plain = time.perf_counter() - t0

        t0 = time.perf_counter()
        data = LocalSource(root / "src").fetch(start, end)
        t_read = time.perf_counter() - t0
        clean = validate_batch(data, dt.date.today(), root / "reports", "bench")
        t_valid = time.perf_counter() - t0 - t_read
        write_batch(Lake(root / "lake"), clean)
        ours = time.perf_counter() - t0
        t_write = ours - t_read - t_valid

        print(f"plain read_csv + to_parquet : {plain:6.2f} s  {rows / plain:>12,.0f} rows/s")
        print(
            f"stockml ingest (library)    : {ours:6.2f} s  {rows / ours:>12,.0f} rows/s  "
            f"(read {t_read:.2f} s, validate {t_valid:.2f} s, upsert {t_write:.2f} s)"
        )
        print(f"ratio ingest / plain        : {ours / plain:6.2f}x  (target < 3x)")
        t0 = time.perf_counter()
        write_batch(Lake(root / "lake"), validate_batch(data, dt.date.today(), root / "reports", "bench"))
        again = time.perf_counter() - t0
        print(f"re-ingest, nothing changes  : {again:6.2f} s  {rows / again:>12,.0f} rows/s")
        if args.flow:
            from flows.backfill import backfill

            t0 = time.perf_counter()
            backfill(
                start=start,
                end=end,
                source="local",
                local_dir=root / "src",
                data_dir=root / "lake2",
                chunk_days=(end - start).days + 1,
            )
            flow = time.perf_counter() - t0
            print(f"backfill flow (1 chunk)     : {flow:6.2f} s  {rows / flow:>12,.0f} rows/s (with Prefect)")


if __name__ == "__main__":
    main()
