"""Train, evaluate, register and promote: the steps shared by ``stockml train`` and the daily flow.

1. :func:`plan_models`: the requested models plus the champion's procedure (so it is scored on the
   same window), read from the registry; with no champion yet, the volatility baseline as a model.
2. Walk-forward evaluation (:mod:`stockml.training.walkforward`), then :func:`build_report`; the daily
   flow runs :func:`split_by_model`'s pieces in parallel and joins them with :func:`score_parts`.
3. :func:`log_evaluation` (in :mod:`stockml.evaluation.run`): one MLflow run with everything.
4. :func:`register_challenger`: the best requested model that was scored, as trained on the last fold
   (its metrics are out-of-sample), becomes a new registry version with alias ``challenger``. Its bundle
   carries the online calibration its walk-forward ended in, so what is chosen, tagged and gated is the
   calibrated row (``<model>.aci``, :func:`served`) when the run calibrated: the forecast it will serve.
   The version is described in words (:func:`describe_version`; the registered model by
   :data:`MODEL_DESCRIPTION` when it is created); the gate's decision is added (:func:`with_decision`).
5. :func:`gate_challenger`: the gate (:mod:`stockml.registry.promotion`); ``champion`` moves only on a pass.
   :func:`register_baseline`: with no champion yet and the challenger rejected, the volatility baseline
   as a model (``unconditional``) becomes champion: when nothing beats the best baseline, it is the
   honest forecast. :func:`promoted` says which of the two this run made champion.
6. :func:`refit_and_register`: optionally, the promoted procedure refitted on every labelled day
   (``full_train``, :mod:`stockml.training.refit`), registered as the next version and made champion
   in its place.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from stockml.evaluation.report_types import EvaluationReport
from stockml.evaluation.run import EvalRun, assemble, evaluate, log_evaluation
from stockml.features import FeatureArtifacts, FeatureResult
from stockml.registry import tags as T
from stockml.registry.bundle import save_bundle
from stockml.registry.descriptions import MODEL_DESCRIPTION, describe_version, served, with_decision
from stockml.registry.promotion import (
    BASELINE_MODEL,
    UNSCORED,
    Decision,
    GateConfig,
    Procedure,
    Scores,
    baseline_decision,
    decide,
)
from stockml.registry.tracking import (
    TrackingConfig,
    get_alias_version,
    model_version_tags,
    register_bundle,
    set_alias,
    set_version_description,
    set_version_tags,
    version_description,
)
from stockml.sources.base import MarketData
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.ensemble import carry_weights
from stockml.training.refit import refit_epochs, refit_full
from stockml.training.walkforward import (
    CHAMPION_SUFFIX,
    FoldOutput,
    merge_fold_outputs,
)

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Champion:
    version: int
    model_name: str
    model_config: dict

    @property
    def procedure(self) -> Procedure:
        return Procedure.of(self.model_name, self.model_config)


@dataclass(frozen=True)
class Registered:
    """A registry version made from one candidate."""

    name: str  # model name, e.g. "ptft"
    version: int
    scores: Scores
    config: dict = field(default_factory=dict)  # the model config as tagged

    @property
    def procedure(self) -> Procedure:
        return Procedure.of(self.name, self.config)


def current_champion(tracking: TrackingConfig, registered_name: str) -> Champion | None:
    version = get_alias_version(tracking, registered_name, CHAMPION)
    if version is None:
        return None
    tags = model_version_tags(tracking, registered_name, version)
    return Champion(version, tags[T.MODEL_NAME], json.loads(tags.get(T.MODEL_CONFIG, "{}")))


def plan_models(eval_cfg: EvalConfig, champion: Champion | None) -> EvalConfig:
    """``eval_cfg`` with the champion's procedure added to the models when it is not scored already: under
    its model name when that model is not requested, else (a new config of it is) as ``<model>.champion``,
    so the gate compares the challenger with the champion's own recipe on the same window. With no champion
    yet, :data:`~stockml.registry.promotion.BASELINE_MODEL` is added instead: scored and fitted on the last
    fold like any model, it is ready for :func:`register_baseline`."""
    if champion is None:
        if BASELINE_MODEL in eval_cfg.models:
            return eval_cfg
        return eval_cfg.model_copy(update={"models": (*eval_cfg.models, BASELINE_MODEL)})
    name, configs = champion.model_name, dict(eval_cfg.model_configs)
    if name in eval_cfg.models:
        if T.config_tag(configs.get(name)) == T.config_tag(champion.model_config):
            return eval_cfg
        name = name + CHAMPION_SUFFIX
    configs[name] = champion.model_config
    return eval_cfg.model_copy(update={"models": (*eval_cfg.models, name), "model_configs": configs})


def champion_scores(report: EvaluationReport, champion: Champion, challenger: Registered) -> Scores:
    """The champion's procedure's scores in a report planned by :func:`plan_models`: ``<model>.champion``
    when a new config of its model was scored, else its model's entry; unscored when that entry is the
    challenger's own (another config of the same model) or missing."""
    shadow = champion.model_name + CHAMPION_SUFFIX
    if shadow in report.results:
        return scores_of(report, shadow)
    if champion.model_name == challenger.name and champion.procedure != challenger.procedure:
        return UNSCORED
    return scores_of(report, champion.model_name) if champion.model_name in report.results else UNSCORED


def split_by_model(eval_cfg: EvalConfig) -> tuple[EvalConfig, dict[str, EvalConfig]]:
    """``eval_cfg`` cut into walk-forwards that can run apart, over the same folds: the baselines alone,
    and each model alone (so one model's failure leaves the others' results). :func:`score_parts` joins."""
    baselines = eval_cfg.model_copy(update={"models": ()})
    alone = {m: eval_cfg.model_copy(update={"models": (m,), "baselines": ()}) for m in eval_cfg.models}
    return baselines, alone


def score_parts(
    parts: list[list[FoldOutput]],
    data: MarketData,
    features: FeatureResult,
    eval_cfg: EvalConfig,
    train_cfg: TrainConfig,
    info: dict,
) -> EvalRun:
    """The walk-forwards of :func:`split_by_model`'s pieces joined and scored against ``random_walk``.
    A model without a part (it failed) leaves the run's ``eval_cfg``: the run names the models it scored."""
    outputs = merge_fold_outputs(parts)
    done = tuple(m for m in eval_cfg.models if outputs and m in outputs[0].predictions)
    return assemble(outputs, data, features, eval_cfg.model_copy(update={"models": done}), train_cfg, info)


def best_model(report: EvaluationReport, candidates: tuple[str, ...]) -> str:
    """The candidate whose served forecast has the lowest horizon-1 CRPS (ties: the first listed)."""
    scored = [(report.results[served(report, n)].metrics.get("crps"), i, n) for i, n in enumerate(candidates)]
    scored = [s for s in scored if s[0] is not None]
    if not scored:
        raise ValueError(f"no candidate among {list(candidates)} has a CRPS")
    return min(scored)[2]


def scores_of(report: EvaluationReport, name: str) -> Scores:
    """The scores of what a version of ``name`` serves (:func:`served`): what the gate judges."""
    return Scores.from_metrics(report.results[served(report, name)].metrics)


def _version_tags(
    name: str, eval_cfg: EvalConfig, report: EvaluationReport, run_id: str | None
) -> dict[str, str]:
    metrics = report.results[served(report, name)].metrics
    window = report.test_window
    return {
        T.MODEL_CONFIG: T.config_tag(eval_cfg.model_configs.get(name)),
        T.EVAL_WINDOW: T.format_window(*window) if window else "",
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
    decision: Decision | None = None,
) -> Registered:
    """Bundle the model ``name`` as fitted in ``fitted`` (by default the last fold) and register it as a
    new version with ``alias`` (default ``challenger``); its scores are the run's out-of-sample ones.
    The version is tagged and described (:func:`describe_version`), with ``decision`` when it was gated."""
    assert fitted.norm is not None and fitted.symbol_vocab is not None and fitted.sizes is not None
    report, features = run.evaluation.report, run.features
    window = (fitted.fold.train.start.date(), fitted.fold.train.end.date())
    tags = _version_tags(name, run.eval_cfg, report, run_id) | (extra_tags or {})
    config = run.eval_cfg.model_configs.get(name)
    description = describe_version(report, name, config, window, tags.get(T.REFIT_OF))
    if decision is not None:
        tags |= decision.tags()
        description = with_decision(description, decision)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_bundle(
            Path(tmp) / "bundle",
            model=fitted.fitted[name],
            model_name=name,
            model_config=fitted.fitted[name].config,  # as fitted: a size resolved from the data included
            sizes=fitted.sizes,
            feature_config=run.feature_config,
            feature_columns=features.feature_columns,
            artifacts=FeatureArtifacts(fitted.norm, fitted.symbol_vocab, features.sector_vocab),
            train_window=window,
            calibration=run.evaluation.calibration.get(name),
        )
        version = register_bundle(
            tracking,
            folder,
            model_name=registered_name,
            run_id=run_id,
            alias=alias,
            tags=tags,
            description=description,
            model_description=MODEL_DESCRIPTION,
        )
    return Registered(name, version, scores_of(report, name), run.eval_cfg.model_configs.get(name, {}))


def register_challenger(
    tracking: TrackingConfig,
    registered_name: str,
    run: EvalRun,
    requested: tuple[str, ...],
    run_id: str | None,
) -> Registered | None:
    """The best of the ``requested`` models that ``run`` scored (not the champion's procedure unless
    requested, not a model that failed), as fitted on the last fold, registered as ``challenger``.
    None when no requested model was scored."""
    candidates = tuple(m for m in requested if m in run.eval_cfg.models)
    if not candidates:
        return None
    name = best_model(run.evaluation.report, candidates)
    return register_version(tracking, registered_name, run, name, run.outputs[-1], run_id)


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
    carry_weights(refit.fitted[name], run.outputs[-1].fitted.get(name) if run.outputs else None)
    tags = {T.REFIT_OF: str(promoted.version)}
    final = register_version(tracking, registered_name, run, name, refit, run_id, CHAMPION, tags, decision)
    return final, epochs


def gate_challenger(
    tracking: TrackingConfig,
    registered_name: str,
    challenger: Registered,
    champion: Champion | None,
    report: EvaluationReport,
    gate: GateConfig,
) -> Decision:
    """Run the gate on this report's window; tag and describe the challenger version with the decision;
    move ``champion`` on a pass."""
    same = champion is not None and champion.procedure == challenger.procedure
    champ_scores = champion_scores(report, champion, challenger) if champion is not None else None
    decision = decide(challenger.scores, report.best_baseline, gate, champ_scores, same)
    tags = decision.tags()
    if champion is not None:
        tags[T.COMPARED_WITH_VERSION] = str(champion.version)
    set_version_tags(tracking, registered_name, challenger.version, tags)
    described = version_description(tracking, registered_name, challenger.version)
    compared = champion.version if champion is not None else None
    text = with_decision(described, decision, compared)
    set_version_description(tracking, registered_name, challenger.version, text)
    if decision.promote:
        set_alias(tracking, registered_name, CHAMPION, challenger.version)
    return decision


@dataclass(frozen=True)
class Promoted:
    """The version a training run made ``champion`` and the decision that made it so."""

    registered: Registered
    decision: Decision


def register_baseline(
    tracking: TrackingConfig,
    registered_name: str,
    run: EvalRun,
    challenger: Registered,
    champion: Champion | None,
    decision: Decision,
    run_id: str | None,
) -> Promoted | None:
    """With no champion yet and ``challenger`` rejected (``decision``), the volatility baseline as a model
    (:data:`~stockml.registry.promotion.BASELINE_MODEL`, planned by :func:`plan_models`, fitted on the last
    fold) registered as ``champion``, the reasons tagged. None when there is a champion, the challenger
    passed, or the baseline model was not scored."""
    if decision.promote or champion is not None or BASELINE_MODEL not in run.eval_cfg.models:
        return None
    report, label = run.evaluation.report, f"{challenger.name} v{challenger.version}"
    why = baseline_decision(label, decision, scores_of(report, BASELINE_MODEL), report.best_baseline)
    fitted = run.outputs[-1]
    registered = register_version(
        tracking, registered_name, run, BASELINE_MODEL, fitted, run_id, CHAMPION, decision=why
    )
    return Promoted(registered, why)


def promoted(challenger: Registered, decision: Decision, baseline: Promoted | None) -> Promoted | None:
    """What a training run made champion: the challenger on a pass, else the baseline when registered."""
    return Promoted(challenger, decision) if decision.promote else baseline


@dataclass(frozen=True)
class TrainOutcome:
    run_id: str
    report: EvaluationReport
    challenger: Registered
    decision: Decision
    refit: Registered | None
    refit_epochs: int | None
    baseline: Promoted | None = None  # the volatility baseline made the first champion in its place

    @property
    def winner(self) -> Promoted | None:
        """What this training made champion (before any refit), with why; None when nothing."""
        return promoted(self.challenger, self.decision, self.baseline)

    @property
    def champion_version(self) -> int | None:
        """The version this training made champion (the refit when there is one), else None."""
        if self.winner is None:
            return None
        return self.refit.version if self.refit is not None else self.winner.registered.version


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
    """Steps 1-6 of this module in one call (``stockml train`` and the replay backfill); the daily flow
    runs the same steps as tasks."""
    began = time.time()
    champion = current_champion(tracking, registered_name)
    eval_cfg = plan_models(requested, champion)
    run = evaluate(data, eval_cfg, train_cfg, info, None)
    report = run.evaluation.report
    run_tags = {"kind": "train", **(tags or {})}
    run_id = log_evaluation(tracking, run, lineage, run_name, run_tags, started_at=began)
    registered = register_challenger(tracking, registered_name, run, requested.models, run_id)
    if registered is None:
        raise ValueError(f"none of the requested models {list(requested.models)} was scored")
    decision = gate_challenger(tracking, registered_name, registered, champion, report, gate_cfg)
    baseline = register_baseline(tracking, registered_name, run, registered, champion, decision, run_id)
    winner = promoted(registered, decision, baseline)
    final, epochs = None, None
    if refit and winner is not None:
        final, epochs = refit_and_register(
            tracking, registered_name, run, winner.registered, winner.decision, run_id
        )
    return TrainOutcome(run_id, report, registered, decision, final, epochs, baseline)
