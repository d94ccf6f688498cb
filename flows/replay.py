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

from prefect import flow, task
from prefect.cache_policies import INPUTS

from flows.ingest import settings_for
from stockml.config import SourceName
from stockml.evaluation.run import data_info
from stockml.registry import tags as T
from stockml.registry.lifecycle import current_champion, train_and_gate
from stockml.registry.promotion import GateConfig
from stockml.registry.tracking import TrackingConfig, model_version_tags
from stockml.sources.factory import make_source
from stockml.store.lake import Lake, frame_hash, read_market
from stockml.training.config import EvalConfig, TrainConfig
from tasks import train as t

REPLAY = "replay"


def retrain_days(days: list[dt.date], every: int) -> list[dt.date]:
    return days[:: max(1, every)]


@task(name="replay-retrain", cache_policy=INPUTS, persist_result=True)
def retrain(
    lake_root: str,
    as_of: dt.date,
    history_days: int,
    symbols: list[str] | None,
    config: dict,
    data_hash: str,
    tracking: dict,
    registered_name: str,
) -> dict[str, int | None]:
    """Train and gate as of ``as_of``: ``{"champion": version or None, "challenger": version}`` afterwards.
    Cached on all inputs: ``data_hash`` identifies the bars it reads, ``config`` everything else."""
    lake = Lake(Path(lake_root))
    start = as_of - dt.timedelta(days=history_days)
    data = read_market(lake, start, as_of, symbols)
    tracking_cfg = TrackingConfig.model_validate(tracking)
    outcome = train_and_gate(
        data,
        EvalConfig.model_validate(config["eval"]),
        TrainConfig.model_validate(config["train"]),
        tracking_cfg,
        registered_name,
        GateConfig.model_validate(config["gate"]),
        info=data_info(config["source"], data.bars, start, as_of) | {"data_hash": data_hash},
        lineage={"bars_hash": data_hash, "as_of": str(as_of)},
        run_name=f"replay-{as_of}",
        tags={"kind": "replay", "as_of": str(as_of)},
    )
    champion = current_champion(tracking_cfg, registered_name)
    if champion is None:
        return {"champion": None, "challenger": outcome.challenger.version}
    window = model_version_tags(tracking_cfg, registered_name, champion.version)[T.EVAL_WINDOW]
    _, seen_to = T.parse_window(window)  # the last day its training and selection saw
    if seen_to > as_of:  # a later retrain's model: using it would look ahead
        raise RuntimeError(
            f"{registered_name} champion v{champion.version} was chosen on days to {seen_to}, after {as_of}: "
            "the replay registry is ahead of this retrain (a lost cache?); use a fresh registered name"
        )
    return {"champion": champion.version, "challenger": outcome.challenger.version}


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
    lake = Lake(settings.data_dir)
    src = make_source(settings)
    days = src.trading_days(start, end)
    calendar = src.trading_days(start, end + dt.timedelta(days=40))
    config = {
        "eval": EvalConfig(models=tuple(models), folds=folds, test_days=test_days).model_dump(mode="json"),
        "train": TrainConfig(max_epochs=max_epochs, progress=False).model_dump(mode="json"),
        "gate": GateConfig(coverage_band=coverage_band).model_dump(mode="json"),
        "source": settings.source,
    }
    retrains = retrain_days(days, retrain_every)
    written, skipped, versions = 0, 0, {}
    for day in days:
        if lake.predictions_path(day, REPLAY).exists():
            skipped += 1
            continue
        anchor = max(r for r in retrains if r <= day)
        if anchor not in versions:
            bars = read_market(lake, anchor - dt.timedelta(days=history_days), anchor, symbols).bars
            versions[anchor] = retrain(
                str(lake.root.resolve()),
                anchor,
                history_days,
                symbols,
                config,
                frame_hash("bars", bars.drop(columns=["source_file", "source_row"], errors="ignore")),
                json.loads(tracking.model_dump_json()),
                registered_name,
            )
        version, role = versions[anchor]["champion"], "champion"
        if version is None and with_challenger:
            version, role = versions[anchor]["challenger"], "challenger"
        if version is None:
            print(f"{day}: no champion yet after the retrain of {anchor}; no forecast")
            continue
        data = read_market(lake, day - dt.timedelta(days=history_days), day, symbols)
        uri = f"models:/{registered_name}/{version}"
        preds, _ = t.forecast(tracking, uri, data, day, calendar)
        preds = preds.assign(model_version=version, model_role=role, retrained_on=anchor)
        lake.write_predictions(preds, day, REPLAY)
        written += 1
    return {
        "days": len(days),
        "forecast_days_written": written,
        "forecast_days_skipped": skipped,
        "retrain_days": [str(r) for r in retrains],
        "predictions": str(lake.root / "predictions" / REPLAY),
    }
