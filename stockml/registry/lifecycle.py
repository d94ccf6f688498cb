"""Train, evaluate, register and promote: the steps shared by ``stockml train`` and the daily flow.

1. :func:`plan_models`: the requested models plus the champion's procedure (so it is scored on the
   same window), read from the registry.
2. Walk-forward evaluation (:mod:`stockml.training.walkforward`), then :func:`build_report`.
3. :func:`log_evaluation` (in :mod:`stockml.evaluation.run`): one MLflow run with everything.
4. :func:`register_version`: the best requested model, as trained on the last fold (its metrics are
   out-of-sample), becomes a new registry version with alias ``challenger``.
5. :func:`gate_challenger`: the gate (:mod:`stockml.registry.promotion`); ``champion`` moves only on a pass.
6. :func:`refit_full`: optionally, the promoted procedure refitted on every labelled day
   (``full_train``), registered as the next version and made champion in its place.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stockml.evaluation.run import EvalRun, evaluate, log_evaluation
from stockml.features import FeatureArtifacts
from stockml.registry import tags as T
from stockml.registry.bundle import save_bundle
from stockml.registry.promotion import Decision, GateConfig, Scores, decide
from stockml.registry.tracking import (
    TrackingConfig,
    get_alias_version,
    model_version_tags,
    register_bundle,
    set_alias,
    set_version_tags,
)
from stockml.sources.base import MarketData
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.splits import DateRange, Fold
from stockml.training.trainer import train_model
from stockml.training.walkforward import FoldOutput, fit_on_window, new_model
from stockml.training.windows import WindowDataset

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Champion:
    version: int
    model_name: str
    model_config: dict


@dataclass(frozen=True)
class Registered:
    """A registry version made from one candidate."""

    name: str  # model name, e.g. "ptft"
    version: int
    scores: Scores


def current_champion(tracking: TrackingConfig, registered_name: str) -> Champion | None:
    version = get_alias_version(tracking, registered_name, CHAMPION)
    if version is None:
        return None
    tags = model_version_tags(tracking, registered_name, version)
    return Champion(version, tags[T.MODEL_NAME], json.loads(tags.get(T.MODEL_CONFIG, "{}")))


def plan_models(eval_cfg: EvalConfig, champion: Champion | None) -> EvalConfig:
    """``eval_cfg`` with the champion's procedure added to the models when it is not there already."""
    if champion is None or champion.model_name in eval_cfg.models:
        return eval_cfg
    configs = dict(eval_cfg.model_configs)
    configs.setdefault(champion.model_name, champion.model_config)
    return eval_cfg.model_copy(
        update={"models": (*eval_cfg.models, champion.model_name), "model_configs": configs}
    )


def best_model(report: dict, candidates: tuple[str, ...]) -> str:
    """The candidate with the lowest horizon-1 CRPS (ties: the first listed)."""
    scored = [(report["results"][n]["metrics"].get("crps"), i, n) for i, n in enumerate(candidates)]
    scored = [s for s in scored if s[0] is not None]
    if not scored:
        raise ValueError(f"no candidate among {list(candidates)} has a CRPS")
    return min(scored)[2]


def scores_of(report: dict, name: str) -> Scores:
    return Scores.from_metrics(report["results"][name]["metrics"])


def _version_tags(name: str, eval_cfg: EvalConfig, report: dict, run_id: str | None) -> dict[str, str]:
    metrics = report["results"][name]["metrics"]
    folds = report["folds"]
    return {
        T.MODEL_CONFIG: json.dumps(eval_cfg.model_configs.get(name, {}), sort_keys=True),
        T.EVAL_WINDOW: T.format_window(folds[0]["test"][0], folds[-1]["test"][1]) if folds else "",
        T.EVAL_CRPS: str(metrics.get("crps")),
        T.EVAL_COVERAGE_90: str(metrics.get("coverage_90")),
        T.EVAL_SKILL_CRPS: str(metrics.get("skill_crps")),
        **({T.RUN_ID: run_id} if run_id else {}),
    }


def register_version(
    tracking: TrackingConfig,
    registered_name: str,
    run: EvalRun,
    name: str,
    fitted: FoldOutput,
    run_id: str | None,
    alias: str = CHALLENGER,
    extra_tags: dict[str, str] | None = None,
) -> Registered:
    """Bundle the model ``name`` as fitted in ``fitted`` (by default the last fold) and register it as a
    new version with ``alias`` (default ``challenger``); its scores are the run's out-of-sample ones."""
    assert fitted.norm is not None and fitted.symbol_vocab is not None and fitted.sizes is not None
    report, features = run.evaluation.report, run.features
    window = (fitted.fold.train.start.date(), fitted.fold.train.end.date())
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_bundle(
            Path(tmp) / "bundle",
            model=fitted.fitted[name],
            model_name=name,
            model_config=run.eval_cfg.model_configs.get(name),
            sizes=fitted.sizes,
            feature_config=run.feature_config,
            feature_columns=features.feature_columns,
            artifacts=FeatureArtifacts(fitted.norm, fitted.symbol_vocab, features.sector_vocab),
            train_window=window,
        )
        version = register_bundle(
            tracking,
            folder,
            model_name=registered_name,
            run_id=run_id,
            alias=alias,
            tags=_version_tags(name, run.eval_cfg, report, run_id) | (extra_tags or {}),
        )
    return Registered(name, version, scores_of(report, name))


def refit_and_register(
    tracking: TrackingConfig,
    registered_name: str,
    run: EvalRun,
    promoted: Registered,
    decision: Decision,
    run_id: str | None,
) -> tuple[Registered, int]:
    """The promoted procedure refitted on every labelled day, registered as ``champion`` in its place.
    Returns the new version and the number of epochs trained."""
    name, features = promoted.name, run.features
    epochs = refit_epochs(run.outputs, name, run.train_cfg.max_epochs)
    refit = refit_full(
        features.frame,
        features.feature_columns,
        features.label_columns,
        name,
        run.eval_cfg,
        run.train_cfg,
        features.sector_vocab.size,
        epochs,
    )
    tags = {T.REFIT_OF: str(promoted.version), **decision.tags()}
    final = register_version(tracking, registered_name, run, name, refit, run_id, CHAMPION, tags)
    return final, epochs


def gate_challenger(
    tracking: TrackingConfig,
    registered_name: str,
    challenger: Registered,
    champion: Champion | None,
    report: dict,
    gate: GateConfig,
) -> Decision:
    """Run the gate on this report's window; tag the challenger version; move ``champion`` on a pass."""
    champ_scores = scores_of(report, champion.model_name) if champion is not None else None
    same = champion is not None and champion.model_name == challenger.name
    decision = decide(challenger.scores, scores_of(report, "random_walk"), gate, champ_scores, same)
    tags = decision.tags()
    if champion is not None:
        tags[T.COMPARED_WITH_VERSION] = str(champion.version)
    set_version_tags(tracking, registered_name, challenger.version, tags)
    if decision.promote:
        set_alias(tracking, registered_name, CHAMPION, challenger.version)
    return decision


def refit_full(
    frame: pd.DataFrame,
    features: list[str],
    labels: list[str],
    name: str,
    eval_cfg: EvalConfig,
    train_cfg: TrainConfig,
    n_sectors: int,
    epochs: int,
) -> FoldOutput:
    """``name`` refitted on every labelled date (``full_train``: no validation, ``epochs`` epochs)."""
    labelled = frame.loc[frame[labels[-1]].notna(), "trade_date"]
    window = DateRange(pd.Timestamp(labelled.min()), pd.Timestamp(labelled.max()))
    norm, vocab, arrays, sizes = fit_on_window(frame, features, labels, window, eval_cfg, n_sectors)
    train = WindowDataset.for_segment(arrays, eval_cfg.lookback, window, history_before_start=True)
    model = new_model(name, sizes, eval_cfg, train_cfg.seed)
    cfg = train_cfg.model_copy(update={"full_train": True, "max_epochs": max(1, epochs)})
    train_model(model, train, None, cfg)
    fold = Fold(index=-1, train=window, test=window, valid=None)
    return FoldOutput(fold, {}, {}, fitted={name: model}, norm=norm, symbol_vocab=vocab, sizes=sizes)


def refit_epochs(outputs: list[FoldOutput], name: str, default: int) -> int:
    """Epochs for the refit: one more than the last fold's best epoch (0-based), else ``default``."""
    history = outputs[-1].history.get(name) if outputs else None
    if not history:
        return default
    best = min(range(len(history)), key=lambda i: history[i].get("valid_loss", float("inf")))
    return best + 1


@dataclass(frozen=True)
class TrainOutcome:
    run_id: str
    report: dict
    challenger: Registered
    decision: Decision
    refit: Registered | None
    refit_epochs: int | None

    @property
    def champion_version(self) -> int | None:
        """The version this training made champion (the refit when there is one), else None."""
        if not self.decision.promote:
            return None
        return self.refit.version if self.refit is not None else self.challenger.version


def train_and_gate(
    data: MarketData,
    requested: EvalConfig,
    train_cfg: TrainConfig,
    tracking: TrackingConfig,
    registered_name: str,
    gate_cfg: GateConfig,
    *,
    info: dict,
    lineage: dict,
    refit: bool = False,
    run_name: str = "train",
    tags: dict | None = None,
) -> TrainOutcome:
    """Steps 1-6 of this module in one call (``stockml train`` and the replay backfill)."""
    champion = current_champion(tracking, registered_name)
    eval_cfg = plan_models(requested, champion)
    run = evaluate(data, eval_cfg, train_cfg, info, None)
    report = run.evaluation.report
    run_id = log_evaluation(tracking, run, lineage, run_name, {"kind": "train", **(tags or {})})
    name = best_model(report, requested.models)
    registered = register_version(tracking, registered_name, run, name, run.outputs[-1], run_id)
    decision = gate_challenger(tracking, registered_name, registered, champion, report, gate_cfg)
    final, epochs = None, None
    if refit and decision.promote:
        final, epochs = refit_and_register(tracking, registered_name, run, registered, decision, run_id)
    return TrainOutcome(run_id, report, registered, decision, final, epochs)
