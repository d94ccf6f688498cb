"""The ``stockml`` command: ``features``, ``evaluate``, ``train``, ``predict``, ``backtest`` and ``request``.

Every command first brings the lake at ``--data-dir`` up to date for the range (an idempotent,
validated ingest from ``--source``), then reads it, so results are built from the validated lake.
Heavy libraries are imported inside the commands, so ``stockml --help`` stays fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stockml.evaluation.report_types import BacktestSection, EvaluationReport

DEFAULT_HISTORY_DAYS = 3 * 365


def _walk_forward(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--models", type=lambda s: tuple(m for m in s.split(",") if m), default=("lstm",))
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--test-days", type=int, default=60)
    parser.add_argument("--valid-days", type=int, default=None, help="validation block (default: 60)")
    parser.add_argument("--max-epochs", type=int, default=None, help="epoch cap (default: the trainer's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="train every model with N seeds (mean, spread)")
    parser.add_argument(
        "--macro",
        choices=["changes", "levels", "none"],
        default="none",
        help="macro series in the models' features: not at all (default), standardised changes, raw levels",
    )
    parser.add_argument(
        "--target",
        choices=["vol", "sd"],
        default="vol",
        help="vol: targets / (EWMA sigma_t * sqrt(h)) (default); sd: / each horizon's training sd",
    )
    parser.add_argument(
        "--model-config",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help='a model\'s config, e.g. ensemble=\'{"combine": "mean"}\' (repeatable)',
    )
    parser.add_argument("--tracking-uri", default=None, help="MLflow server (default: sqlite under mlruns/)")


def _model_configs(items: list[str]) -> dict[str, dict]:
    """``NAME=JSON`` items -> {name: config}; a clear error for a malformed one."""
    configs = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            config = json.loads(text) if sep else None
        except json.JSONDecodeError as exc:
            raise SystemExit(f"--model-config {item!r}: not JSON after '=': {exc}") from None
        if not name or not isinstance(config, dict):
            raise SystemExit(f"--model-config {item!r}: expected NAME={{...}} (a JSON object)")
        configs[name] = config
    return configs


def _common(parser: argparse.ArgumentParser, dated: bool = True) -> None:
    from stockml.config import SOURCE_NAMES

    parser.add_argument("--source", choices=SOURCE_NAMES, default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="lake root (default: settings, data/)")
    parser.add_argument(
        "--local-dir", type=Path, default=None, help="folder of tushare files (--source local)"
    )
    parser.add_argument("--symbols", nargs="*", default=None, help="ts_codes and/or index codes")
    if not dated:
        return
    parser.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        default=None,
        help=f"first day of history (default: end - {DEFAULT_HISTORY_DAYS} days)",
    )
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--horizon", type=int, default=5)


def _market(args: argparse.Namespace):  # -> tuple[Settings, MarketData]
    from stockml.config import settings_for
    from stockml.sources.factory import make_source
    from stockml.store.ingest import ingest_job, ingest_range
    from stockml.store.lake import read_market

    settings = settings_for(args.source, args.data_dir, args.local_dir)
    start = args.start or args.end - dt.timedelta(days=DEFAULT_HISTORY_DAYS)
    job = ingest_job(settings, make_source(settings), start, args.end, args.symbols)
    chunk_days = settings.ingest.chunk_days
    ingest_range(job.lake, job.source, job.source_key, start, args.end, job.universe, chunk_days)
    return settings, read_market(job.lake, start, args.end, job.universe), start


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


def _lineage(settings) -> dict:  # type: ignore[no-untyped-def]
    from stockml.store.lake import Lake, lake_lineage

    return lake_lineage(Lake(settings.data_dir))


def _configs(args: argparse.Namespace):  # -> tuple[EvalConfig, TrainConfig]
    from stockml.training.config import EvalConfig, TrainConfig

    optional = {"valid_days": args.valid_days}
    eval_cfg = EvalConfig(
        models=args.models,
        horizon=args.horizon,
        folds=args.folds,
        test_days=args.test_days,
        seeds=args.seeds,
        target=args.target,
        macro_mode=args.macro,
        model_configs=_model_configs(args.model_config),
        **{k: v for k, v in optional.items() if v is not None},
    )
    epochs = {"max_epochs": args.max_epochs} if args.max_epochs is not None else {}
    return eval_cfg, TrainConfig(seed=args.seed, **epochs)


def _print_table(report: EvaluationReport) -> None:
    keys = ["crps", "skill_crps", "skill_crps_t", "skill_crps_best", "skill_crps_best_t", "rank_ic"]
    keys += ["brier_up", "coverage_90"]
    print(f"{'name':<18}{'kind':<10}" + "".join(f"{k:>18}" for k in keys))
    for name, r in report.results.items():
        print(f"{name:<18}{r.kind:<10}" + "".join(f"{_fmt(r.metrics.get(k)):>18}" for k in keys))
    print(f"best baseline: {report.best_baseline}")
    for name, r in report.results.items():
        for other, versus in (r.vs_models or {}).items():
            print(f"{name} against {other}: CRPS skill {_fmt(versus.skill_crps)} (t {_fmt(versus.t)})")
    if report.backtest is not None:
        _print_backtest(report.backtest)


def _print_backtest(section: BacktestSection) -> None:
    settings = section.settings
    print(
        f"backtest after costs (top {settings['top_k']}, drop {settings['drop_n']}, at the "
        f"{settings['trade_at']}; against the {settings['benchmark']}; fractions a year):"
    )
    columns = {
        "annual_return": "return",
        "excess_annual_return": "excess",
        "sharpe": "sharpe",
        "max_drawdown": "max_dd",
        "turnover": "turnover",
        "cost_drag": "costs",
        "random_annual_return": "random",
        "perfect_annual_return": "perfect",
    }
    print(f"{'name':<18}" + "".join(f"{header:>10}" for header in columns.values()))
    for name, row in section.results.items():
        print(f"{name:<18}" + "".join(f"{_fmt(row.get(k)):>10}" for k in columns))


def cmd_evaluate(args: argparse.Namespace) -> int:
    from stockml.evaluation.run import data_info, evaluate, log_evaluation
    from stockml.registry.tracking import TrackingConfig

    settings, data, start = _market(args)
    eval_cfg, train_cfg = _configs(args)
    info = data_info(settings.source, data.bars, start, args.end)
    began = time.time()
    run = evaluate(data, eval_cfg, train_cfg, info, None)
    report = run.evaluation.report
    if not args.no_mlflow:
        tracking = TrackingConfig(tracking_uri=args.tracking_uri)
        name = f"evaluate-{'-'.join(eval_cfg.models)}"
        run_id = log_evaluation(tracking, run, _lineage(settings), name, started_at=began)
        report = report.with_run_id(run_id)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    print(f"wrote {args.out}")
    _print_table(report)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from stockml.evaluation.run import data_info
    from stockml.registry.lifecycle import train_and_gate
    from stockml.registry.promotion import GateConfig
    from stockml.registry.tracking import TrackingConfig

    settings, data, start = _market(args)
    requested, train_cfg = _configs(args)
    outcome = train_and_gate(
        data,
        requested,
        train_cfg,
        TrackingConfig(tracking_uri=args.tracking_uri),
        args.registered_name,
        GateConfig(margin=args.margin, coverage_band=tuple(args.coverage_band)),
        info=data_info(settings.source, data.bars, start, args.end),
        lineage=_lineage(settings),
        refit=args.refit,
        run_name=f"train-{'-'.join(requested.models)}",
    )
    reg, decision = outcome.challenger, outcome.decision
    print(f"{args.registered_name} version {reg.version} ({reg.name}) @challenger; run {outcome.run_id}")
    verdict = "promoted to @champion" if decision.promote else "rejected"
    print(f"promotion: {verdict}: {'; '.join(decision.reasons)}")
    if outcome.baseline is not None:
        won = outcome.baseline.registered
        why = "; ".join(outcome.baseline.decision.reasons)
        print(f"{args.registered_name} version {won.version} ({won.name}) @champion instead: {why}")
    if outcome.refit is not None:
        print(f"refit ({outcome.refit_epochs} epochs): version {outcome.refit.version} is @champion")
    _print_table(outcome.report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = outcome.report.with_run_id(outcome.run_id)
        args.out.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from stockml.registry.tracking import TrackingConfig, load_forecaster, served_calibration
    from stockml.serving.forecast import forecast_with
    from stockml.sources.factory import make_source

    tracking = TrackingConfig(tracking_uri=args.tracking_uri)
    model = load_forecaster(tracking, args.model_uri)
    learned = None if args.raw else served_calibration(tracking, args.model_uri)
    args.end, args.start = args.as_of, args.as_of - dt.timedelta(days=args.history_days)
    settings, data, _ = _market(args)
    calendar = make_source(settings).trading_days(args.as_of, args.as_of + dt.timedelta(days=60))
    preds = forecast_with(model, data, args.as_of, calendar, learned, raw=args.raw).predictions
    args.out.parent.mkdir(parents=True, exist_ok=True)
    preds.to_parquet(args.out, index=False)
    print(f"wrote {args.out}: {preds['ts_code'].nunique()} symbols x {preds['horizon'].max()} horizons")
    return 0


def cmd_request(args: argparse.Namespace) -> int:
    """The JSON body of a REST request to the model served by ``mlflow models serve``, on stdout."""
    from stockml.config import settings_for
    from stockml.registry.tracking import TrackingConfig, load_forecaster, served_calibration
    from stockml.serving.forecast import calibration_param
    from stockml.serving.prediction import prediction_frame
    from stockml.serving.rest import request_body
    from stockml.store.lake import Lake, read_market

    tracking = TrackingConfig(tracking_uri=args.tracking_uri)
    forecaster = load_forecaster(tracking, args.model_uri).unwrap_python_model().forecaster
    learned = None if args.raw else served_calibration(tracking, args.model_uri)
    start = args.as_of - dt.timedelta(days=args.history_days)
    lake = Lake(settings_for(None, args.data_dir, None).data_dir)  # the settings' lake, as every command
    data = read_market(lake, start, args.as_of, args.symbols)
    frame = prediction_frame(data, forecaster.feature_config, forecaster.artifacts.sector_vocab)
    body = request_body(forecaster, frame, args.as_of, calibration_param(learned, args.raw))
    text = json.dumps(body, allow_nan=False)
    sys.stdout.write(text + "\n")
    columns = body["dataframe_split"]["columns"]
    print(f"{len(body['dataframe_split']['data'])} rows x {len(columns)} columns", file=sys.stderr)
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    """Backtest every model of an evaluation run (its out-of-sample predictions) on the lake's bars."""
    import tempfile

    import pandas as pd

    from stockml.backtest.compare import backtest_table, book_config, with_adj_factor
    from stockml.config import settings_for
    from stockml.registry.tracking import TrackingConfig, download_artifacts
    from stockml.store.lake import Lake, read_market

    run_id = args.run_id or json.loads(args.report.read_text()).get("mlflow_run_id")
    if not run_id:
        print(
            f"stockml backtest: {args.report} has no mlflow_run_id (evaluate without --no-mlflow)",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = download_artifacts(
            TrackingConfig(tracking_uri=args.tracking_uri), run_id, "evaluation", Path(tmp)
        )
        files = sorted(folder.glob("predictions_*.parquet"))
        predictions = {p.stem.removeprefix("predictions_"): pd.read_parquet(p) for p in files}
    predictions = {
        n: p for n, p in predictions.items() if ".seed" not in n and (not args.models or n in args.models)
    }
    if not predictions:
        print(f"stockml backtest: run {run_id} has no predictions to backtest", file=sys.stderr)
        return 2
    dates = pd.concat([p["date"] for p in predictions.values()])
    lake = Lake(settings_for(None, args.data_dir, None).data_dir)
    data = read_market(lake, dates.min().date(), dates.max().date() + dt.timedelta(days=10))
    cfg = book_config(next(iter(predictions.values())), args.top_k, args.drop_n, args.trade_at)
    print(
        f"book: top {cfg.strategy.top_k}, drop {cfg.strategy.drop_n}, at the {cfg.trade_at}", file=sys.stderr
    )
    table = backtest_table(predictions, with_adj_factor(data.bars, data.adj_factor), cfg, data.stock_basic)
    print(table.to_string(float_format=lambda v: f"{v:+.4f}"))
    if args.out is not None:
        table.to_csv(args.out, index_label="name")
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
    _walk_forward(evaluate)
    evaluate.add_argument("--no-mlflow", action="store_true", help="write the report only")
    evaluate.add_argument("--out", type=Path, required=True)
    evaluate.set_defaults(func=cmd_evaluate)
    train = sub.add_parser(
        "train",
        help="evaluate; register the best model as @challenger; make it @champion if it passes the gate",
    )
    _walk_forward(train)
    train.add_argument("--registered-name", default="stockml", help="registry model name")
    train.add_argument(
        "--margin", type=float, default=0.01, help="relative CRPS gain needed over the champion"
    )
    train.add_argument("--coverage-band", type=float, nargs=2, default=(0.85, 0.95), metavar=("LO", "HI"))
    train.add_argument("--refit", action="store_true", help="after a promotion, refit on every labelled day")
    train.add_argument("--out", type=Path, default=None, help="also write the evaluation report here")
    train.set_defaults(func=cmd_train)
    predict = sub.add_parser("predict", help="forecast the next H trading days with a registered model")
    _common(predict, dated=False)
    predict.add_argument("--model-uri", required=True, help="e.g. models:/stockml@champion")
    predict.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    predict.add_argument("--history-days", type=int, default=400, help="calendar days of bars to read")
    predict.add_argument("--tracking-uri", default=None, help="MLflow server (default: sqlite under mlruns/)")
    predict.add_argument("--out", type=Path, required=True)
    predict.add_argument(
        "--raw", action="store_true", help="the model's own quantiles, without its online calibration"
    )
    predict.set_defaults(func=cmd_predict)
    backtest = sub.add_parser(
        "backtest", help="what an evaluation's forecasts would have earned: a cost-aware A-share top-k book"
    )
    backtest.add_argument("--report", type=Path, default=None, help="stockml evaluate's --out report")
    backtest.add_argument("--run-id", default=None, help="or the evaluation's MLflow run id")
    backtest.add_argument("--data-dir", type=Path, default=None, help="lake root (default: settings, data/)")
    backtest.add_argument("--models", type=lambda v: tuple(m for m in v.split(",") if m), default=())
    backtest.add_argument(
        "--top-k", type=int, default=None, help="names held (default: a fifth of the universe, 1-30)"
    )
    backtest.add_argument(
        "--drop-n",
        type=int,
        default=None,
        help="names replaced a day at most (default: a sixth of top-k, >= 1)",
    )
    backtest.add_argument("--trade-at", choices=["open", "close"], default="open")
    backtest.add_argument(
        "--tracking-uri", default=None, help="MLflow server (default: sqlite under mlruns/)"
    )
    backtest.add_argument("--out", type=Path, default=None, help="also write the table as CSV")
    backtest.set_defaults(func=cmd_backtest)
    request = sub.add_parser(
        "request", help="the JSON body of a REST request to `mlflow models serve` (reads the lake, no ingest)"
    )
    request.add_argument("--data-dir", type=Path, default=None, help="lake root (default: settings, data/)")
    request.add_argument("--symbols", nargs="*", default=None, help="ts_codes (default: all in the lake)")
    request.add_argument("--model-uri", default="models:/stockml@champion")
    request.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    request.add_argument("--history-days", type=int, default=400, help="calendar days of bars to read")
    request.add_argument("--tracking-uri", default=None, help="MLflow server (default: sqlite under mlruns/)")
    request.add_argument("--raw", action="store_true", help="ask for the model's quantiles, uncalibrated")
    request.set_defaults(func=cmd_request)
    return parser


def _log_progress() -> None:
    """stockml's progress lines (one per fold, model and epoch, with elapsed and time left) on stderr, so a
    long command says what it does also when its output is a file, CI or a worker's log (a terminal also
    gets the epoch bar). Other libraries' loggers stay as they are."""
    logger = logging.getLogger("stockml")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Run a command; a settings error (e.g. ``--source local`` without ``--local-dir``) is one line on
    stderr and exit status 2, not a traceback."""
    from stockml.config import SettingsError

    args = build_parser().parse_args(argv)
    _log_progress()
    try:
        return int(args.func(args))
    except SettingsError as err:
        print(f"stockml {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
