"""Wall time of one daily run (demo source, default models) split by step, for several universe sizes.

    python bench/daily.py                 # 30, 100 and 300 symbols
    python bench/daily.py --symbols 30    # one size

Each size runs ``python -m flows.daily`` in a fresh process with its own lake, MLflow store and Prefect
home (a temporary local Prefect server, as ``make run`` uses), and prints the flow's own per-step
timings plus the process's wall time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("ingest", "features", "train_evaluate", "registry", "forecast", "total")


def run_once(n_symbols: int, work: Path) -> dict:
    env = {
        **os.environ,
        "STOCKML_CONFIG": str(ROOT / "config" / "stockml.yaml"),
        "STOCKML_DEMO__N_SYMBOLS": str(n_symbols),
        "STOCKML_DATA_DIR": str(work / "data"),
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPATH": str(ROOT),
    }
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "flows.daily", "--source", "demo"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - began
    match = re.search(r"seconds by step: (\{.*?\})", done.stdout + done.stderr)
    if done.returncode != 0 or match is None:
        raise RuntimeError(
            f"daily run failed for {n_symbols} symbols:\n{(done.stdout + done.stderr)[-3000:]}"
        )
    steps = json.loads(match.group(1).replace("'", '"'))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # GiB (ru_maxrss is KiB)
    published = "predictions:" in done.stdout
    return {"symbols": n_symbols, "wall": wall, "peak_gib": peak, "published": published, **steps}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, nargs="+", default=[30, 100, 300])
    args = parser.parse_args()
    print(
        f"{'symbols':>8}"
        + "".join(f"{s:>16}" for s in STEPS)
        + f"{'process wall':>14}{'peak GiB*':>10}{'forecast':>10}"
    )
    for n in args.symbols:
        with tempfile.TemporaryDirectory(prefix="stockml-bench-daily-") as tmp:
            row = run_once(n, Path(tmp))
        cells = "".join(f"{row.get(s, float('nan')):>16.1f}" for s in STEPS)
        published = "yes" if row["published"] else "no**"
        print(f"{n:>8}{cells}{row['wall']:>14.1f}{row['peak_gib']:>10.2f}{published:>10}", flush=True)
    print("seconds; 'total' is the flow body, 'process wall' adds interpreter start and the temporary")
    print("Prefect server. *peak RSS of the largest child process so far (cumulative maximum).")
    print("**no champion passed the gate, so no forecast was made and 'forecast' timed nothing.")


if __name__ == "__main__":
    main()
