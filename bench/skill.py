"""Forecast skill on the real A-share sample: each model next to the baselines, with training cost.

    python bench/skill.py                  # lstm, tcn, ptft, lightgbm and the ensemble, each also calibrated
    python bench/skill.py --models lstm,tcn --seeds 3
    python bench/skill.py --report report.json             # print an existing report's table
    python bench/skill.py --report a.json --report b.json --markdown   # runs merged, as the README table

Runs ``stockml evaluate`` on ``../shared/data/ashare_sample`` (10 stocks, 2020-2024) into a temporary lake,
without MLflow, and prints per model and baseline: CRPS, skill against the random walk and its
Newey-West t, skill against the best baseline and its t, 90% coverage, Kupiec's p of the 95% VaR, rank IC
and training seconds (summed over folds and seeds); for several seeds, the mean and sd over seeds. Every
model also has its online-calibrated row, ``<model>.aci``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stockml.evaluation.report_types import EvaluationReport

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "ashare_sample"
COLUMNS = (
    ("crps", "crps", "{:.5f}"),
    ("skill_rw", "skill_crps", "{:+.4f}"),
    ("t_rw", "skill_crps_t", "{:+.2f}"),
    ("skill_best", "skill_crps_best", "{:+.4f}"),
    ("t_best", "skill_crps_best_t", "{:+.2f}"),
    ("cov90", "coverage_90", "{:.3f}"),
    ("kupiec95", "kupiec_p_95", "{:.3f}"),
    ("rank_ic", "rank_ic", "{:+.4f}"),
    ("train_s", "train_seconds", "{:.1f}"),
)


def command(args: argparse.Namespace, lake: Path, out: Path) -> list[str]:
    return [
        "evaluate", "--source", "local", "--local-dir", str(SAMPLE), "--data-dir", str(lake),
        "--start", "2020-01-01", "--end", "2024-12-31", "--models", args.models,
        "--folds", str(args.folds), "--test-days", str(args.test_days), "--seed", "0",
        "--seeds", str(args.seeds), "--horizon", str(args.horizon), "--no-mlflow", "--out", str(out),
        *[arg for item in args.model_config for arg in ("--model-config", item)],
    ]  # fmt: skip


def _cell(value: object, fmt: str) -> str:
    return fmt.format(value) if isinstance(value, int | float) else "-"


def print_table(report: EvaluationReport) -> None:
    results = report.results
    print(f"{'name':<18}{'kind':<10}" + "".join(f"{c:>11}" for c, _, _ in COLUMNS))
    for name, r in results.items():
        if r.kind == "seed":
            continue
        m = dict(r.metrics)
        seeds = r.seeds
        if seeds:  # the seeds' total training time; the other columns are seed 0's
            m["train_seconds"] = sum(
                results[n].metrics["train_seconds"] for n in results if n.split(".seed")[0] == name
            )
        print(f"{name:<18}{r.kind:<10}" + "".join(f"{_cell(m.get(k), f):>11}" for _, k, f in COLUMNS))
        if seeds:
            spread = ", ".join(
                f"{k} {mean:+.4f} +- {sd:.4f}"
                for k in ("skill_crps", "skill_crps_best", "coverage_90")
                if (mean := seeds.mean.get(k)) is not None and (sd := seeds.sd.get(k)) is not None
            )
            print(f"{'':<18}{'seeds':<10}n={seeds.n}: {spread}")
    folds = report.folds
    print(f"best baseline: {report.best_baseline}; {len(folds)} folds, test {folds[0].test[0]} .. "
          f"{folds[-1].test[1]}, {report.data.rows} feature rows")  # fmt: skip


def markdown_table(report: EvaluationReport) -> str:
    """The README's results tables: one row per model and baseline (seed 0 for models; a calibrated row's
    training is its model's), then each model's mean and sd over its seeds."""
    head = (
        "| name | kind | crps | skill vs random_walk (t) | skill vs best baseline (t) | coverage_90 "
        "| Kupiec p 95 | rank_ic | train s |"
    )
    lines = [head, "|" + "---|" * 9]
    results = report.results
    for name, r in results.items():
        if r.kind == "seed":
            continue
        m = r.metrics
        train = sum(results[n].metrics["train_seconds"] or 0 for n in results if n.split(".seed")[0] == name)
        trained = "-" if name.endswith(".aci") else f"{train:.0f}"
        lines.append(
            f"| {name} | {r.kind} | {_cell(m.get('crps'), '{:.5f}')} "
            f"| {_cell(m.get('skill_crps'), '{:+.4f}')} ({_cell(m.get('skill_crps_t'), '{:+.2f}')}) "
            f"| {_cell(m.get('skill_crps_best'), '{:+.4f}')} "
            f"({_cell(m.get('skill_crps_best_t'), '{:+.2f}')}) "
            f"| {_cell(m.get('coverage_90'), '{:.3f}')} | {_cell(m.get('kupiec_p_95'), '{:.2f}')} "
            f"| {_cell(m.get('rank_ic'), '{:+.3f}')} | {trained} |"
        )
    best = report.best_baseline or "best baseline"
    lines += [
        "",
        f"| model | seeds | skill vs random_walk | skill vs {best} | coverage_90 |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if r.seeds is None:
            continue
        cells = [
            f"{mean:{spec}} ± {sd:.{digits}f}"
            if (mean := r.seeds.mean.get(k)) is not None and (sd := r.seeds.sd.get(k)) is not None
            else "-"
            for k, spec, digits in (
                ("skill_crps", "+.4f", 4),
                ("skill_crps_best", "+.4f", 4),
                ("coverage_90", ".3f", 3),
            )
        ]
        lines.append(f"| {name} | {r.seeds.n} | {' | '.join(cells)} |")
    return "\n".join(lines)


def merge_reports(reports: list[EvaluationReport]) -> EvaluationReport:
    """Reports of separate runs on the same folds as one: every result, the first report's where names
    repeat (the baselines, which every run scores identically), each ``<model>.aci`` after its model."""
    from stockml.evaluation.calibration import SUFFIX as ACI

    first = reports[0]
    results = dict(first.results)
    for other in reports[1:]:
        if other.folds != first.folds:
            raise ValueError("reports were run on different folds")
        for name, r in other.results.items():
            results.setdefault(name, r)
    own = [n for n in results if not n.endswith(ACI)]  # each calibrated row right after its model's
    order = [m for n in own for m in (n, n + ACI) if m in results]
    order += [n for n in results if n not in order]
    return replace(first, results={n: results[n] for n in order})


def read_report(path: Path) -> EvaluationReport:
    """A report written by ``stockml evaluate --out`` (its ``report.json``)."""
    from stockml.evaluation.report_types import EvaluationReport

    return EvaluationReport.from_dict(json.loads(path.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="lstm,tcn,ptft,lightgbm,ensemble")
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--test-days", type=int, default=40)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--model-config", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument(
        "--report",
        type=Path,
        action="append",
        help="print this report instead of running; repeat to merge runs",
    )
    parser.add_argument("--markdown", action="store_true", help="with --report: the README's markdown table")
    parser.add_argument("--out", type=Path, default=None, help="keep the report here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.report:
        report = merge_reports([read_report(p) for p in args.report])
        print(markdown_table(report)) if args.markdown else print_table(report)
        return 0
    if not SAMPLE.is_dir():
        print(f"no sample data at {SAMPLE}", file=sys.stderr)
        return 2
    from stockml.cli import main as stockml_main

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "report.json"
        cmd = command(args, Path(tmp) / "lake", out)
        print("stockml " + " ".join(cmd))
        began = time.perf_counter()
        if stockml_main(cmd) != 0:
            return 1
        wall = time.perf_counter() - began
        print()
        print_table(read_report(out))
    print(f"wall time {wall:.0f} s (features, every fold's fits and the report)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
