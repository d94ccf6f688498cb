"""Ingest throughput: a `local` backfill of a tushare-format folder vs a plain read_csv + to_parquet.

Usage: python bench/ingest.py [--symbols 300] [--years 10] [--runs 2]

Writes one newest-first CSV per ts_code (as tushare exports them) from the demo market into a
temporary folder, then times
(a) the plain copy: read every CSV with pandas and write one parquet file;
(b) stockml's ingest of the folder as a library: read + normalise, validate (pandera, lazy), upsert into
    an empty lake, then the same again (nothing changes);
(c) the user's command, ``python -m flows.backfill --source local --local-dir SRC --data-dir LAKE
    --start .. --end ..``, in a fresh process from the repository root (its config, a temporary Prefect
    server as without a Prefect API), ``--runs`` times on the same lake: the first run fills it, a rerun
    of a finished job re-ingests everything and changes nothing. Its wall time is split by the log's
    timestamps into start-up (imports, settings), the temporary server, the flow (the time inside it is
    what the backfill prints as ``backfill done in X s``) and shutdown. The Prefect home is temporary and
    shared by the runs: the first one also creates its database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from stockml.columns import BAR_COLS
from stockml.sources.demo import DemoConfig, DemoSource
from stockml.sources.local import LocalSource
from stockml.store.ingest import validate_batch, write_batch
from stockml.store.lake import Lake

ROOT = Path(__file__).resolve().parents[1]
_STAMP = r"^(\d\d:\d\d:\d\d\.\d{3}) \| \w+ +\| "  # Prefect's console log lines
_MARKS = {
    "server": _STAMP + r"prefect - Starting temporary server",
    "flow": _STAMP + r"Flow run .* - Beginning flow run",
    "flow_end": _STAMP + r"Flow run .* - Finished in state",
    "stop": _STAMP + r"prefect - Stopping temporary server",
}


def write_tushare_folder(root: Path, n_symbols: int, years: int) -> tuple[int, dt.date, dt.date]:
    start, end = dt.date(2024 - years + 1, 1, 1), dt.date(2024, 12, 31)
    bars = DemoSource(DemoConfig(n_symbols=n_symbols, start=start, end=end)).fetch(start, end).bars
    bars = bars[list(BAR_COLS)].assign(trade_date=bars["trade_date"].dt.strftime("%Y%m%d"))
    (root / "daily").mkdir(parents=True)
    for code, frame in bars.groupby("ts_code"):
        frame.iloc[::-1].to_csv(root / "daily" / f"{code}.csv", index=False)
    return len(bars), start, end


def plain_copy(src: Path, out: Path) -> float:
    t0 = time.perf_counter()
    frames = [pd.read_csv(p) for p in sorted((src / "daily").glob("*.csv"))]
    pd.concat(frames, ignore_index=True).to_parquet(out)
    return time.perf_counter() - t0


def library_ingest(src: Path, lake: Path, start: dt.date, end: dt.date) -> tuple[float, ...]:
    """Seconds to read, validate and upsert the folder into ``lake``, and their total."""
    t0 = time.perf_counter()
    data = LocalSource(src).fetch(start, end)
    t1 = time.perf_counter()
    clean = validate_batch(data, dt.date.today(), lake / "_reports", "bench")
    t2 = time.perf_counter()
    write_batch(Lake(lake), clean)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, t3 - t0


def run_command(argv: list[str], prefect_home: Path) -> dict:
    """Run the backfill command; its wall time, phases (from the log's timestamps) and peak memory."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "DO_NOT_TRACK": "true",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PREFECT_API_URL", None)  # the user's case: no server configured
    launched = dt.datetime.now()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)  # reaped here, for its peak memory
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    inside = re.search(r"backfill done in ([\d.]+) s: (\d+) chunk\(s\) run", output)
    if proc.returncode != 0 or inside is None:
        raise RuntimeError(f"backfill failed ({proc.returncode}):\n{output[-3000:]}")
    at = {}
    for name, pattern in _MARKS.items():
        found = re.search(pattern, output, re.MULTILINE)
        if found:
            clock = dt.datetime.combine(launched.date(), dt.time.fromisoformat(found.group(1)))
            at[name] = (clock - launched).total_seconds()
    phases = {}
    if len(at) == len(_MARKS):
        phases = {
            "start-up": at["server"],
            "temporary server": at["flow"] - at["server"],
            "flow run": at["flow_end"] - at["flow"],
            "shutdown": wall - at["flow_end"],
        }
    chunks, inside_s = int(inside.group(2)), float(inside.group(1))
    # ru_maxrss (KiB): the largest of the process and the children it reaped (the temporary server)
    return {
        "wall": wall,
        "inside": inside_s,
        "chunks": chunks,
        "phases": phases,
        "peak_mb": usage.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--runs", type=int, default=2, help="runs of the backfill command (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stockml-bench-ingest-") as tmp:
        root = Path(tmp)
        rows, start, end = write_tushare_folder(root / "src", args.symbols, args.years)
        print(f"folder: {args.symbols} CSV files, {rows:,} bars, {start}..{end}")

        plain = plain_copy(root / "src", root / "plain.parquet")
        print(f"(a) plain read_csv + to_parquet : {plain:6.2f} s  {rows / plain:>12,.0f} rows/s")
        t_read, t_valid, t_write, ours = library_ingest(root / "src", root / "lake", start, end)
        print(
            f"(b) stockml ingest (library)    : {ours:6.2f} s  {rows / ours:>12,.0f} rows/s  "
            f"{ours / plain:.1f}x plain (read {t_read:.2f} s, validate {t_valid:.2f} s, "
            f"upsert {t_write:.2f} s)"
        )
        again = library_ingest(root / "src", root / "lake", start, end)[-1]
        print(f"    again, nothing changes      : {again:6.2f} s  {rows / again:>12,.0f} rows/s")

        argv = [sys.executable, "-m", "flows.backfill", "--source", "local", "--local-dir", str(root / "src")]
        argv += ["--data-dir", str(root / "lake2"), "--start", str(start), "--end", str(end)]
        if args.runs:
            print(f"(c) {' '.join(['python', *argv[1:]])}")
        for run in range(args.runs):
            got = run_command(argv, root / "prefect")
            what = "fills the lake" if run == 0 else "rerun, nothing changes"
            wall, inside, ratio = got["wall"], got["inside"], got["inside"] / plain
            print(
                f"    run {run + 1} ({what}): wall {wall:.1f} s, inside the flow {inside:.1f} s = "
                f"{ratio:.1f}x plain (target < 3x), {got['chunks']} chunk(s), "
                f"peak RSS {got['peak_mb']:.0f} MiB"
            )
            if got["phases"]:
                print("      " + ", ".join(f"{k} {v:.1f} s" for k, v in got["phases"].items()))


if __name__ == "__main__":
    main()
