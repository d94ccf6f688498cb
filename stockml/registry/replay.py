"""Replay: the retrains the daily flow would have made on past days, each on the data known that day.

Every ``retrain_every`` trading days of the range (:func:`retrain_days`) the models are trained, evaluated and
gated as of that day (:func:`retrain_as_of`); the days until the next retrain are forecast with the version
that retrain left as champion (:func:`forecast_version`), a version number, so a rerun never reaches forward.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from stockml.evaluation.run import data_info
from stockml.registry import tags as T
from stockml.registry.lifecycle import CHALLENGER, CHAMPION, current_champion, train_and_gate
from stockml.registry.promotion import GateConfig
from stockml.registry.tracking import TrackingConfig, model_version_tags
from stockml.sources.base import MarketData
from stockml.training.config import EvalConfig, TrainConfig

REPLAY = "replay"  # the lake's folder of replayed forecasts (``predictions/replay/``)


class ReplayConfig(BaseModel):
    """How every retrain of one replay trains, evaluates and gates."""

    model_config = ConfigDict(frozen=True)
    eval: EvalConfig
    train: TrainConfig
    gate: GateConfig
    source: str  # the settings' source name, recorded in each run's data info


def retrain_days(days: list[dt.date], every: int) -> list[dt.date]:
    """Every ``every``-th of the trading ``days``, from the first: the days a replay retrains on."""
    return days[:: max(1, every)]


def retrain_as_of(
    data: MarketData,
    start: dt.date,
    as_of: dt.date,
    config: ReplayConfig,
    data_hash: str,
    tracking: TrackingConfig,
    registered_name: str,
) -> dict[str, int | None]:
    """Train and gate on ``data`` (the bars of [start, as_of], whose hash is ``data_hash``) as of ``as_of``:
    ``{"champion": version or None, "challenger": version}`` afterwards. Raises when the registry's champion
    was chosen on days after ``as_of``: forecasting with it would look ahead."""
    outcome = train_and_gate(
        data,
        config.eval,
        config.train,
        tracking,
        registered_name,
        config.gate,
        info=data_info(config.source, data.bars, start, as_of) | {"data_hash": data_hash},
        lineage={"bars_hash": data_hash, "as_of": str(as_of)},
        run_name=f"replay-{as_of}",
        tags={"kind": "replay", "as_of": str(as_of)},
    )
    champion = current_champion(tracking, registered_name)
    if champion is None:
        return {CHAMPION: None, CHALLENGER: outcome.challenger.version}
    window = model_version_tags(tracking, registered_name, champion.version)[T.EVAL_WINDOW]
    _, seen_to = T.parse_window(window)  # the last day its training and selection saw
    if seen_to > as_of:  # a later retrain's model: using it would look ahead
        raise RuntimeError(
            f"{registered_name} champion v{champion.version} was chosen on days to {seen_to}, after {as_of}: "
            "the replay registry is ahead of this retrain (a lost cache?); use a fresh registered name"
        )
    return {CHAMPION: champion.version, CHALLENGER: outcome.challenger.version}


def forecast_version(retrained: dict[str, int | None], with_challenger: bool) -> tuple[int | None, str]:
    """The version (and its role) that forecasts after a retrain: the champion; where there is none yet,
    the challenger when ``with_challenger``, else None."""
    if retrained[CHAMPION] is None and with_challenger:
        return retrained[CHALLENGER], CHALLENGER
    return retrained[CHAMPION], CHAMPION
