"""The daily retrain: ``python -m flows.daily`` or the ``daily-retrain`` deployment.

ingest the latest days -> validation gate -> features -> per-model walk-forward (parallel tasks) ->
score against the baselines -> MLflow run -> register the best model as ``@challenger`` -> promotion gate
(with no champion yet, a rejected challenger leaves the volatility baseline as ``@champion``)
-> optional ``full_train`` refit of what won -> forecast the next H trading days with
``@champion`` -> predictions parquet in the lake -> the target book for the next session (research output,
not advice) -> data-quality and drift summary -> markdown artifact.

A non-trading day is recorded and the run ends. A validation failure stops the run before training (the
registry is untouched). A model that fails does not stop the others: the run ends Failed with a message
naming it, after everything else was published.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, Failed, State

from flows import quiet_offline
from flows.ingest import ingest
from stockml.config import SOURCE_NAMES, Settings, SourceName, settings_for
from stockml.evaluation.report_types import EvaluationReport
from stockml.evaluation.run import EvalRun, data_info
from stockml.features import FeatureResult
from stockml.registry.lifecycle import CHAMPION, Champion, plan_models, promoted, split_by_model
from stockml.registry.promotion import GateConfig
from stockml.registry.tracking import TrackingConfig
from stockml.serving.daily_report import calibration_line, daily_markdown, promotion_lines
from stockml.sources.base import MarketData
from stockml.sources.demo import DemoConfig
from stockml.sources.factory import make_source
from stockml.store.lake import Lake
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.walkforward import FoldOutput
from tasks import ingest as ti
from tasks import lake as tl
from tasks import portfolio as tp
from tasks import train as t
from tasks.timing import StageTimer

MARKET_TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_MODELS = ("lstm", "tcn")


def default_as_of(settings: Settings) -> dt.date:
    """Today in Shanghai; the demo market's own last day for the demo source (its calendar ends there)."""
    if settings.source == "demo":
        return DemoConfig.model_validate(settings.demo).end
    return dt.datetime.now(MARKET_TZ).date()


@flow(name="daily-retrain", log_prints=True)
def daily_retrain(
    as_of: dt.date | None = None,
    source: SourceName | None = None,
    data_dir: Path | None = None,
    local_dir: Path | None = None,
    symbols: list[str] | None = None,
    models: list[str] = list(DEFAULT_MODELS),  # noqa: B006 (Prefect renders the default in its form)
    history_days: int = 730,
    horizon: int = 5,
    folds: int = 1,
    test_days: int = 40,
    max_epochs: int = 3,
    seed: int = 0,
    registered_name: str = "stockml",
    margin: float = 0.01,
    coverage_band: tuple[float, float] = (0.85, 0.95),
    refit: bool = False,
    tracking_uri: str | None = None,
    mlruns_dir: Path = Path("mlruns"),
) -> State:
    """Retrain, evaluate, gate and forecast as of ``as_of`` (default: today in Asia/Shanghai)."""
    timer = StageTimer()
    settings = settings_for(source, data_dir, local_dir)
    as_of = as_of or default_as_of(settings)
    src = make_source(settings)
    history_start = as_of - dt.timedelta(days=history_days)
    calendar = ti.trading_calendar(src, history_start, as_of + dt.timedelta(days=40))
    summary: dict[str, Any] = {"as_of": str(as_of), "seconds": timer.seconds}
    if as_of not in calendar:
        summary["status"] = "non-trading day: nothing to do"
        _publish(summary, None, None, None)
        return Completed(message=summary["status"], data=summary)

    lake = Lake(settings.data_dir)
    universe = ti.universe(settings, src, symbols)
    with timer.stage("ingest"):
        start = ti.ingest_start(lake, history_start)
        ingest(start, as_of, settings.source, universe, settings.data_dir, local_dir)

    tracking = TrackingConfig(root=mlruns_dir, tracking_uri=tracking_uri)
    gate_cfg = GateConfig(margin=margin, coverage_band=coverage_band)
    requested = EvalConfig(models=tuple(models), horizon=horizon, folds=folds, test_days=test_days)
    train_cfg = TrainConfig(max_epochs=max_epochs, seed=seed, progress=False)
    champion = t.champion(tracking, registered_name)
    eval_cfg = plan_models(requested, champion)
    with timer.stage("features"):
        data, features = t.build_features(lake, history_start, as_of, universe, eval_cfg)
    with timer.stage("train_evaluate"):
        parts, failed = evaluate_in_parallel(features, eval_cfg, train_cfg)
        summary["failed_models"] = failed
        info = data_info(settings.source, features.frame, history_start, as_of)
        run = t.score(parts, data, features, eval_cfg, train_cfg, info)
    with timer.stage("registry"):
        lineage = tl.lineage(lake, as_of)
        tags = {"kind": "daily", "as_of": as_of}
        run_id = t.log_to_mlflow(tracking, run, lineage, f"daily-{as_of}", tags, timer.started_at)
        summary["mlflow_run_id"] = run_id
        summary |= register_and_gate(
            tracking, registered_name, run, requested, champion, gate_cfg, refit, run_id
        )
    with timer.stage("forecast"):
        summary["quality"] = t.quality(features, as_of, universe)
        published, drift, book = forecast_with_champion(
            tracking, registered_name, lake, data, features, as_of, calendar
        )
        summary |= published
    summary["seconds"]["total"] = timer.elapsed()
    summary["status"] = f"partially failed: {', '.join(failed)}" if failed else "completed"
    _publish(summary, run.evaluation.report, drift, book)
    if failed:
        return Failed(
            message=f"partially failed: {'; '.join(f'{m}: {w}' for m, w in failed.items())}", data=summary
        )
    return Completed(message="completed", data=summary)


def evaluate_in_parallel(
    features: FeatureResult, eval_cfg: EvalConfig, train_cfg: TrainConfig
) -> tuple[list[list[FoldOutput]], dict[str, str]]:
    """One walk-forward task per model plus one for the baselines, all submitted at once; a failed
    model is recorded (name -> error) and the others go on."""
    logger = get_run_logger()
    baselines_cfg, alone = split_by_model(eval_cfg)
    futures = {name: t.evaluate_model.submit(features, cfg, train_cfg) for name, cfg in alone.items()}
    baselines = t.evaluate_model.submit(features, baselines_cfg, train_cfg)
    parts, failed = [baselines.result()], {}
    for name, future in futures.items():
        try:
            parts.append(future.result())
        except Exception as err:  # one model's failure must not stop the others
            failed[name] = f"{type(err).__name__}: {err}"
            logger.error("model %s failed: %s", name, failed[name])
    return parts, failed


def register_and_gate(
    tracking: TrackingConfig,
    registered_name: str,
    run: EvalRun,
    requested: EvalConfig,
    champion: Champion | None,
    gate_cfg: GateConfig,
    refit: bool,
    run_id: str,
) -> dict[str, str]:
    """The best requested model that finished becomes ``@challenger`` and meets the gate; with no champion
    yet, a rejected one leaves the volatility baseline as ``@champion``; what won is refitted when
    ``refit``. Returns the summary's lines (none when every requested model failed)."""
    challenger = t.register(tracking, registered_name, run, requested.models, run_id)
    if challenger is None:
        return {}
    decision = t.gate(tracking, registered_name, challenger, champion, run, gate_cfg)
    baseline = t.baseline(tracking, registered_name, run, challenger, champion, decision, run_id)
    winner = promoted(challenger, decision, baseline)
    lines = promotion_lines(registered_name, challenger, decision, winner, champion)
    if refit and winner is not None:
        final = t.refit(tracking, registered_name, run, winner.registered, winner.decision, run_id)
        lines["refit"] = f"v{final.version} refitted on every labelled day is @{CHAMPION}"
    return lines


def forecast_with_champion(
    tracking: TrackingConfig,
    registered_name: str,
    lake: Lake,
    data: MarketData,
    features: FeatureResult,
    as_of: dt.date,
    calendar: list[dt.date],
) -> tuple[dict[str, Any], pd.DataFrame | None, pd.DataFrame | None]:
    """The ``@champion``'s forecast from ``as_of``, wearing the online calibration it has learned from its
    earlier forecasts' outcomes, and the target book it implies for the next session, both written to the
    lake: the summary's lines, the drift table and the book (None when no model has passed the gate yet)."""
    champion = t.champion(tracking, registered_name)
    if champion is None:
        return {"champion": "none yet: no model has passed the gate, so no forecast is published"}, None, None
    published = tl.published(lake, champion.version)
    state = t.learn_calibration(tracking, registered_name, champion.version, published, features, as_of)
    uri = f"models:/{registered_name}@{CHAMPION}"
    preds, drift = t.forecast(tracking, uri, data, as_of, calendar, state)
    path = tl.write_predictions(lake, preds.assign(model_version=champion.version), as_of)
    book = tp.target_book(preds, tl.previous_portfolio(lake, as_of), as_of)
    book = book.assign(as_of=as_of, model_version=champion.version)
    lines = {
        "champion": f"{registered_name} v{champion.version} ({champion.model_name})",
        "predictions": str(path),
        "portfolio": str(tl.write_portfolio(lake, book, as_of)),
        "calibration": calibration_line(state),
        "drift_alerts": int(drift["alert"].sum()),
    }
    return lines, drift, book


def _publish(
    summary: dict, report: EvaluationReport | None, drift: pd.DataFrame | None, book: pd.DataFrame | None
) -> None:
    markdown = daily_markdown(summary, report, drift, book)
    create_markdown_artifact(markdown, key="daily-retrain", description=f"daily retrain {summary['as_of']}")
    print(markdown)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.daily", description=__doc__)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--source", choices=SOURCE_NAMES, default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="lake root (default: settings)")
    parser.add_argument("--local-dir", type=Path, default=None, help="folder of tushare files (local)")
    parser.add_argument("--symbols", nargs="*", default=None)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--refit", action="store_true")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--task-runner", choices=["default", "dask"], default="default")
    parser.add_argument("--dask-address", default=None, help="scheduler address (default: a local cluster)")
    return parser.parse_args(argv)


def with_task_runner(  # type: ignore[no-untyped-def]
    kind: Literal["default", "dask"], address: str | None = None, cluster_kwargs: dict | None = None
):
    """The flow on the chosen task runner: Prefect's default (threads), or Dask through ``prefect-dask``:
    the scheduler at ``address``, else a local cluster (``cluster_kwargs`` go to ``LocalCluster``)."""
    if kind == "default":
        return daily_retrain
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(address=address) if address else DaskTaskRunner(cluster_kwargs=cluster_kwargs)
    return daily_retrain.with_options(task_runner=runner)


def main(argv: list[str] | None = None) -> int:
    quiet_offline()
    args = _parse_args(argv)
    flow_fn = with_task_runner(args.task_runner, args.dask_address)
    state = flow_fn(
        as_of=args.as_of,
        source=args.source,
        data_dir=args.data_dir,
        local_dir=args.local_dir,
        symbols=args.symbols,
        models=[m for m in args.models.split(",") if m],
        max_epochs=args.max_epochs,
        refit=args.refit,
        tracking_uri=args.tracking_uri,
        return_state=True,
    )
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, dict):
        print(where_to_look(summary))
    return 0 if state.is_completed() else 1


def where_to_look(summary: dict) -> str:
    root = Path("mlruns").resolve()
    lines = [f"status: {summary.get('status')}; seconds by step: {summary.get('seconds')}"]
    if summary.get("predictions"):
        lines.append(f"predictions: {summary['predictions']}")
    if summary.get("portfolio"):
        lines.append(f"portfolio:   {summary['portfolio']} (research output, not advice)")
    lines += [
        f"MLflow UI:   mlflow ui --backend-store-uri sqlite:///{root / 'mlflow.db'}",
        "Prefect UI:  prefect server start   (then open http://127.0.0.1:4200)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
