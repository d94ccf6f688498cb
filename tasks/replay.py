"""The replay's retrain task: cached, so a rerun of a replay retrains nothing it already retrained."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import task
from prefect.cache_policies import INPUTS

from stockml.registry.replay import ReplayConfig, retrain_as_of
from stockml.registry.tracking import TrackingConfig
from stockml.store.lake import Lake, read_market


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
    """Train and gate as of ``as_of`` (:func:`~stockml.registry.replay.retrain_as_of`): ``{"champion":
    version or None, "challenger": version}`` afterwards. Cached on all inputs, plain values so the key is
    stable across processes: ``data_hash`` identifies the bars it reads, ``config`` (a
    :class:`ReplayConfig`) and ``tracking`` (a :class:`TrackingConfig`) everything else."""
    start = as_of - dt.timedelta(days=history_days)
    data = read_market(Lake(Path(lake_root)), start, as_of, symbols)
    cfg, tracking_cfg = ReplayConfig.model_validate(config), TrackingConfig.model_validate(tracking)
    return retrain_as_of(data, start, as_of, cfg, data_hash, tracking_cfg, registered_name)
