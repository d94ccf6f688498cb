"""The champion/challenger gate: the pure decision, then promotion both ways on a real MLflow registry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from mlflow import MlflowClient
from test_bundle import feature_frame, saved_bundle
from test_tracking import cfg  # noqa: F401  (fixture: a fresh store under tmp_path)

from stockml.evaluation.report import kind_of
from stockml.evaluation.report_types import DataInfo, EvaluationReport, FoldInfo, ModelResult
from stockml.models import ModelSizes
from stockml.models.tcn import TCNConfig, TCNModel
from stockml.registry import tags as T
from stockml.registry.lifecycle import (
    Champion,
    Registered,
    best_model,
    current_champion,
    gate_challenger,
    plan_models,
)
from stockml.registry.promotion import UNSCORED, GateConfig, Procedure, Scores, decide
from stockml.registry.tracking import TrackingConfig, get_alias_version, register_bundle, set_alias
from stockml.training.config import EvalConfig
from stockml.training.walkforward import new_model

GATE = GateConfig(margin=0.02, coverage_band=(0.85, 0.95))
RW = Scores(crps=1.0, coverage_90=0.9)


def test_first_champion_must_beat_the_random_walk() -> None:
    assert decide(Scores(0.99, 0.9), RW, GATE).promote
    rejected = decide(Scores(1.0, 0.9), RW, GATE)
    assert not rejected.promote
    assert "does not beat random_walk" in rejected.reasons[-1]
    assert rejected.tags()["stockml.promotion"] == "rejected"


@pytest.mark.parametrize("coverage", [0.849, 0.951, float("nan")])
def test_coverage_outside_the_band_blocks_even_a_better_model(coverage: float) -> None:
    decision = decide(Scores(0.5, coverage), RW, GATE, champion=Scores(0.9, 0.9))
    assert not decision.promote
    assert "outside [0.85, 0.95]" in decision.reasons[0]


def test_the_margin_against_a_champion() -> None:
    champion = Scores(0.80, 0.9)
    assert not decide(Scores(0.785, 0.9), RW, GATE, champion=champion).promote  # 1.9% better: not enough
    assert decide(Scores(0.783, 0.9), RW, GATE, champion=champion).promote  # 2.1% better
    assert decide(Scores(0.80, 0.85), RW, GATE, champion=champion, same_procedure=True).promote  # a refit
    assert not decide(Scores(1.2, 0.9), RW, GATE, champion=champion, same_procedure=True).promote


def test_gate_config_rejects_a_bad_band() -> None:
    with pytest.raises(ValueError, match="coverage_band"):
        GateConfig(coverage_band=(0.95, 0.85))


def _report(**crps_cov: tuple[float, float]) -> EvaluationReport:
    results = {
        n: ModelResult(kind_of(n), {"crps": c, "coverage_90": v}, {}, (), {})
        for n, (c, v) in crps_cov.items()
    }
    fold = FoldInfo(("2021-01-04", "2021-04-30"), None, ("2021-05-03", "2021-06-30"), {})
    data = DataInfo("demo", ("000001.SZ",), "2021-01-04", "2021-06-30", 100)
    return EvaluationReport(data, 1, (0.05, 0.5, 0.95), (fold,), "random_walk", results)


def test_plan_adds_the_champions_procedure_and_best_model_picks_lowest_crps() -> None:
    champion = Champion(3, "tcn", {"levels": 2})
    planned = plan_models(EvalConfig(models=("lstm",)), champion)
    assert planned.models == ("lstm", "tcn") and planned.model_configs["tcn"] == {"levels": 2}
    assert plan_models(
        EvalConfig(models=("tcn",), model_configs={"tcn": {"levels": 2}}), champion
    ).models == ("tcn",)
    # A new config of the champion's model: the champion's own recipe is scored beside it.
    changed = plan_models(EvalConfig(models=("tcn",)), champion)
    assert changed.models == ("tcn", "tcn.champion")
    assert changed.model_configs == {"tcn.champion": {"levels": 2}}
    shadow = new_model("tcn.champion", ModelSizes(n_features=3, horizon=1), changed, seed=0)
    assert isinstance(shadow, TCNModel) and shadow.config == TCNConfig(levels=2)
    report = _report(lstm=(0.9, 0.9), tcn=(0.8, 0.9), random_walk=(1.0, 0.9))
    assert best_model(report, ("lstm",)) == "lstm"  # only requested models are candidates
    assert best_model(report, ("lstm", "tcn")) == "tcn"


def _register(cfg: TrackingConfig, tmp_path: Path, name: str, tag: str) -> int:  # noqa: F811
    bundle = saved_bundle(tmp_path / tag, feature_frame(), config={"hidden_size": 4, "embedding_dim": 2})
    return register_bundle(cfg, bundle, model_name="demo", alias="challenger", tags={T.MODEL_NAME: name})


def test_promotion_both_ways_on_a_real_registry(cfg: TrackingConfig, tmp_path: Path) -> None:  # noqa: F811
    client = MlflowClient(cfg.resolved_tracking_uri())
    assert current_champion(cfg, "demo") is None

    # 1. The first champion: better than the random walk, coverage in the band -> promoted.
    v1 = _register(cfg, tmp_path, "lstm", "v1")
    report = _report(lstm=(0.90, 0.91), random_walk=(1.0, 0.90))
    decision = gate_challenger(cfg, "demo", Registered("lstm", v1, Scores(0.90, 0.91)), None, report, GATE)
    assert decision.promote
    assert get_alias_version(cfg, "demo", "champion") == v1
    assert client.get_model_version("demo", str(v1)).tags["stockml.promotion"] == "promoted"
    champion = current_champion(cfg, "demo")
    assert champion is not None and (champion.version, champion.model_name) == (v1, "lstm")

    # 2. A challenger 1% better than the champion on the same window: the gate wants 2% -> rejected.
    v2 = _register(cfg, tmp_path, "tcn", "v2")
    report = _report(lstm=(0.90, 0.91), tcn=(0.891, 0.90), random_walk=(1.0, 0.90))
    decision = gate_challenger(
        cfg, "demo", Registered("tcn", v2, Scores(0.891, 0.90)), champion, report, GATE
    )
    assert not decision.promote
    assert get_alias_version(cfg, "demo", "champion") == v1  # nothing else changed
    assert get_alias_version(cfg, "demo", "challenger") == v2
    tags = client.get_model_version("demo", str(v2)).tags
    assert (
        tags["stockml.promotion"] == "rejected"
        and "does not beat champion" in tags["stockml.promotion_reasons"]
    )
    assert tags["stockml.compared_with_version"] == str(v1)
    assert "stockml.promotion" in client.get_model_version("demo", str(v1)).tags  # v1's own tags kept

    # 3. A challenger 5% better with coverage in the band -> the champion moves.
    v3 = _register(cfg, tmp_path, "tcn", "v3")
    report = _report(lstm=(0.90, 0.91), tcn=(0.855, 0.88), random_walk=(1.0, 0.90))
    assert gate_challenger(
        cfg, "demo", Registered("tcn", v3, Scores(0.855, 0.88)), champion, report, GATE
    ).promote
    assert get_alias_version(cfg, "demo", "champion") == v3


def test_evaluation_window_round_trips() -> None:
    text = T.format_window("2024-07-08", "2024-12-31")
    assert text == "2024-07-08..2024-12-31"
    assert T.parse_window(text) == (dt.date(2024, 7, 8), dt.date(2024, 12, 31))
    with pytest.raises(ValueError, match="not an evaluation window"):
        T.parse_window("2024-07-08")


def test_a_procedure_is_the_model_name_and_its_tagged_config() -> None:
    assert Procedure.of("lstm", {"hidden_size": 8, "dropout": 0.2}) == Procedure.of(
        "lstm", {"dropout": 0.2, "hidden_size": 8}
    )  # key order is not part of it
    assert Procedure.of("lstm", None) == Procedure.of("lstm", {}) == Procedure("lstm", "{}")
    assert Procedure.of("lstm", {"hidden_size": 8}) != Procedure.of("lstm", {"hidden_size": 16})
    assert Procedure.of("lstm", {}) != Procedure.of("tcn", {})
    missing = decide(Scores(0.5, 0.9), RW, GATE, champion=UNSCORED)
    assert not missing.promote
    assert missing.reasons[-1] == "the champion's procedure has no CRPS on this window"


def test_a_config_change_of_the_champions_model_is_a_new_procedure(
    cfg: TrackingConfig,  # noqa: F811
    tmp_path: Path,
) -> None:
    def register(tag: str, config: dict) -> int:
        bundle = saved_bundle(tmp_path / tag, feature_frame(), config={"hidden_size": 4, "embedding_dim": 2})
        tags = {T.MODEL_NAME: "lstm", T.MODEL_CONFIG: T.config_tag(config)}
        return register_bundle(cfg, bundle, model_name="demo", alias="challenger", tags=tags)

    v1 = register("v1", {"hidden_size": 4, "embedding_dim": 2})
    set_alias(cfg, "demo", "champion", v1)
    champion = current_champion(cfg, "demo")
    assert champion is not None
    assert champion.procedure == Procedure("lstm", '{"embedding_dim": 2, "hidden_size": 4}')  # as tagged
    report = _report(lstm=(0.95, 0.9), random_walk=(1.0, 0.9))  # the challenger's, not 2% below itself

    # The champion's recipe refitted (config keys in another order): no margin, beating random_walk is enough.
    v2 = register("v2", {"embedding_dim": 2, "hidden_size": 4})
    refit = Registered("lstm", v2, Scores(0.95, 0.9), {"embedding_dim": 2, "hidden_size": 4})
    decision = gate_challenger(cfg, "demo", refit, champion, report, GATE)
    assert decision.promote and "same procedure as the champion" in decision.reasons[-1]
    assert get_alias_version(cfg, "demo", "champion") == v2

    # Another config of the same model: a new procedure. The report's lstm entry is the challenger's, so the
    # champion's procedure has no score on this window and the margin cannot be met -> rejected.
    v3 = register("v3", {"hidden_size": 8})
    changed = Registered("lstm", v3, Scores(0.95, 0.9), {"hidden_size": 8})
    decision = gate_challenger(cfg, "demo", changed, champion, report, GATE)
    assert not decision.promote and "no CRPS on this window" in decision.reasons[-1]
    assert get_alias_version(cfg, "demo", "champion") == v2

    # Planned as plan_models does, the champion's recipe has its own entry: the margin applies to it.
    report = _report(lstm=(0.95, 0.9), **{"lstm.champion": (0.99, 0.9)}, random_walk=(1.0, 0.9))
    champion = current_champion(cfg, "demo")
    assert champion is not None
    decision = gate_challenger(cfg, "demo", changed, champion, report, GATE)
    assert decision.promote and get_alias_version(cfg, "demo", "champion") == v3
