"""The ``stockml`` command: ``features`` and ``evaluate`` (``train`` and ``predict`` are not built yet).

Every command first brings the lake at ``--data-dir`` up to date for the range (an idempotent,
validated ingest from ``--source``), then reads it, so results are built from the validated lake.
Heavy libraries are imported inside the commands, so ``stockml --help`` stays fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

DEFAULT_HISTORY_DAYS = 3 * 365


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=["demo", "local", "tushare"], default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="lake root (default: settings, data/)")
    parser.add_argument(
        "--local-dir", type=Path, default=None, help="folder of tushare files (--source local)"
    )
    parser.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        default=None,
        help=f"first day of history (default: end - {DEFAULT_HISTORY_DAYS} days)",
    )
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--symbols", nargs="*", default=None, help="ts_codes and/or index codes")
    parser.add_argument("--horizon", type=int, default=5)


def _market(args: argparse.Namespace):  # -> tuple[Settings, MarketData]
    from stockml.config import load_settings
    from stockml.data.sources import make_source, resolve_universe, source_id
    from stockml.ingest import ingest_range
    from stockml.lake import Lake, read_market

    overrides = {"source": args.source, "data_dir": args.data_dir, "local_dir": args.local_dir}
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    start = args.start or args.end - dt.timedelta(days=DEFAULT_HISTORY_DAYS)
    source = make_source(settings)
    universe = resolve_universe(source, args.symbols or list(settings.universe))
    lake = Lake(settings.data_dir)
    ingest_range(lake, source, source_id(settings), start, args.end, universe, settings.ingest.chunk_days)
    return settings, read_market(lake, start, args.end, universe), start


def cmd_features(args: argparse.Namespace) -> int:
    from stockml.features import FeatureConfig, build_feature_frame

    _, data, _ = _market(args)
    result = build_feature_frame(data, FeatureConfig(horizon=args.horizon))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.frame.to_parquet(args.out, index=False)
    print(
        f"wrote {args.out}: {len(result.frame):,} rows, {len(result.feature_columns)} features, "
        f"{len(result.label_columns)} labels; summary: {json.dumps(result.summary, default=str)}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from stockml.evaluate_run import run_evaluation

    settings, data, start = _market(args)
    report = run_evaluation(settings, data, args, start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    rows = [
        (
            name,
            r["kind"],
            r["metrics"].get("crps"),
            r["metrics"].get("skill_crps"),
            r["metrics"].get("rank_ic"),
        )
        for name, r in report["results"].items()
    ]
    print(f"wrote {args.out}")
    print(f"{'name':<16}{'kind':<10}{'crps':>10}{'skill_crps':>12}{'rank_ic':>10}")
    for name, kind, crps, skill, ric in rows:
        print(f"{name:<16}{kind:<10}{_fmt(crps):>10}{_fmt(skill):>12}{_fmt(ric):>10}")
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stockml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    features = sub.add_parser(
        "features", help="write the point-in-time feature frame (labels prefixed label_)"
    )
    _common(features)
    features.add_argument("--out", type=Path, required=True)
    features.set_defaults(func=cmd_features)
    evaluate = sub.add_parser(
        "evaluate", help="walk-forward evaluation of models and baselines, logged to MLflow"
    )
    _common(evaluate)
    evaluate.add_argument("--models", type=lambda s: tuple(m for m in s.split(",") if m), default=("lstm",))
    evaluate.add_argument("--folds", type=int, default=2)
    evaluate.add_argument("--test-days", type=int, default=60)
    evaluate.add_argument("--max-epochs", type=int, default=5)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--no-mlflow", action="store_true", help="write the report only")
    evaluate.add_argument(
        "--tracking-uri", default=None, help="MLflow server (default: sqlite under mlruns/)"
    )
    evaluate.add_argument("--out", type=Path, required=True)
    evaluate.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
