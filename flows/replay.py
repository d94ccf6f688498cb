"""Replay: the forecasts the daily flow would have published on each trading day of a past range.

Every ``retrain_every`` trading days (counted from the range's first day) the models are retrained,
evaluated and gated on the data known that day only; each day's forecast comes from the version that the
latest retrain day made champion (a version number, so a rerun never reaches forward in time). Runs go
to their own registered model (default ``stockml-replay``), never the production ``stockml``.

Idempotent and resumable: a day whose forecast file exists is skipped, and a retrain is a task cached on
its inputs (the day, the configuration and a hash of the data it reads), persisted to Prefect's result
storage, so a rerun after a crash redoes only what is missing and a finished range trains nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from prefect import flow

from stockml.config import SourceName, settings_for
from stockml.registry.promotion import GateConfig
from stockml.registry.replay import REPLAY, ReplayConfig, forecast_version, retrain_days
from stockml.registry.tracking import TrackingConfig
from stockml.sources.factory import make_source
from stockml.store.lake import Lake
from stockml.training.config import EvalConfig, TrainConfig
from tasks import lake as tl
from tasks import train as t
from tasks.ingest import trading_calendar
from tasks.replay import retrain


@flow(name="replay", log_prints=True)
def replay(
    start: dt.date,
    end: dt.date,
    source: SourceName | None = None,
    data_dir: Path | None = None,
    local_dir: Path | None = None,
    symbols: list[str] | None = None,
    models: list[str] = ["lstm"],  # noqa: B006
    retrain_every: int = 20,
    history_days: int = 730,
    max_epochs: int = 3,
    folds: int = 1,
    test_days: int = 40,
    registered_name: str = "stockml-replay",
    coverage_band: tuple[float, float] = (0.85, 0.95),
    with_challenger: bool = False,
    tracking_uri: str | None = None,
    mlruns_dir: Path = Path("mlruns"),
) -> dict:
    """Forecasts as of every trading day in [start, end], retraining every ``retrain_every`` days."""
    settings = settings_for(source, data_dir, local_dir)
    tracking = TrackingConfig(root=mlruns_dir, tracking_uri=tracking_uri)
    lake, src, history = Lake(settings.data_dir), make_source(settings), dt.timedelta(days=history_days)
    days = trading_calendar(src, start, end)
    calendar = trading_calendar(src, start, end + dt.timedelta(days=40))
    config = ReplayConfig(
        eval=EvalConfig(models=tuple(models), folds=folds, test_days=test_days),
        train=TrainConfig(max_epochs=max_epochs, progress=False),
        gate=GateConfig(coverage_band=coverage_band),
        source=settings.source,
    )
    # plain values in the retrain task's cache key, so that it is the same in every process
    config_json, tracking_json = config.model_dump(mode="json"), json.loads(tracking.model_dump_json())
    retrains = retrain_days(days, retrain_every)
    written, skipped, versions = 0, 0, {}
    for day in days:
        if tl.has_forecast(lake, day, REPLAY):
            skipped += 1
            continue
        anchor = max(r for r in retrains if r <= day)
        if anchor not in versions:
            versions[anchor] = retrain(
                lake_root=str(lake.root.resolve()),
                as_of=anchor,
                history_days=history_days,
                symbols=symbols,
                config=config_json,
                data_hash=tl.bars_hash(lake, anchor - history, anchor, symbols),
                tracking=tracking_json,
                registered_name=registered_name,
            )
        version, role = forecast_version(versions[anchor], with_challenger)
        if version is None:
            print(f"{day}: no champion yet after the retrain of {anchor}; no forecast")
            continue
        data = tl.read_market(lake, day - history, day, symbols)
        preds, _ = t.forecast(tracking, f"models:/{registered_name}/{version}", data, day, calendar)
        preds = preds.assign(model_version=version, model_role=role, retrained_on=anchor)
        tl.write_predictions(lake, preds, day, REPLAY)
        written += 1
    return {
        "days": len(days),
        "forecast_days_written": written,
        "forecast_days_skipped": skipped,
        "retrain_days": [str(r) for r in retrains],
        "predictions": str(lake.root / "predictions" / REPLAY),
    }
