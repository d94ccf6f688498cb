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
from stockml.registry.promotion import (
    BASELINE_MODEL,
    UNSCORED,
    GateConfig,
    Procedure,
    Scores,
    baseline_decision,
    decide,
)
from stockml.registry.tracking import TrackingConfig, get_alias_version, register_bundle, set_alias
from stockml.training.config import EvalConfig
from stockml.training.walkforward import new_model

GATE = GateConfig(margin=0.02, coverage_band=(0.85, 0.95))  # min_skill_t 2.0, kupiec_alpha 0.05
BEST = "ewma_vol"


def _scores(
    crps: float, coverage: float = 0.9, skill: float = 0.05, t: float = 3.0, kupiec: float = 0.5
) -> Scores:
    """Scores with evidence against the best baseline and a 95% VaR that passes Kupiec, unless told."""
    return Scores(crps, coverage, skill_crps_best=skill, skill_crps_best_t=t, kupiec_p_95=kupiec)


def test_with_every_piece_of_evidence_the_first_champion_is_promoted() -> None:
    decision = decide(_scores(0.9), BEST, GATE)
    assert decision.promote and decision.failed == ()
    assert decision.reasons == (
        "beats the best baseline ewma_vol: CRPS skill +0.0500, Newey-West t 3.00 "
        "(needs skill > 0 and t >= 2.0)",
        "coverage_90 0.900 inside [0.85, 0.95]",
        "95% VaR passes Kupiec's test: p 0.500 > 0.05",
        "no champion yet: no margin to meet",
    )
    assert decision.tags()["stockml.promotion"] == "promoted"


@pytest.mark.parametrize(
    ("skill", "t"), [(0.05, 1.99), (0.05, float("nan")), (-0.01, 2.5), (float("nan"), 3.0), (0.0, 2.0)]
)
def test_a_gain_over_the_best_baseline_within_noise_is_rejected(skill: float, t: float) -> None:
    rejected = decide(_scores(0.9, skill=skill, t=t), BEST, GATE)
    assert not rejected.promote
    assert rejected.failed == (rejected.reasons[0],)
    assert rejected.reasons[0].startswith("does not beat the best baseline ewma_vol")
    assert rejected.tags()["stockml.promotion"] == "rejected"
    assert decide(_scores(0.9, skill=0.001, t=2.0), BEST, GATE).promote  # t = 2 is enough
    assert decide(_scores(0.9, t=2.5), BEST, GATE.model_copy(update={"min_skill_t": 3.0})).failed


@pytest.mark.parametrize("p", [0.01, 0.05, float("nan")])
def test_a_var_that_fails_kupiec_is_rejected(p: float) -> None:
    rejected = decide(_scores(0.9, kupiec=p), BEST, GATE)
    assert not rejected.promote
    assert rejected.failed == (f"95% VaR fails Kupiec's test: p {p:.3f} not > 0.05",)
    assert decide(_scores(0.9, kupiec=p), BEST, GATE.model_copy(update={"kupiec_alpha": 0.0})).promote is (
        p > 0
    )


def test_the_evidence_is_asked_of_a_refit_and_against_a_champion_too() -> None:
    champion = _scores(0.95)
    for same in (False, True):  # beats the champion by 5% / is the champion's own recipe
        assert decide(_scores(0.90), BEST, GATE, champion, same).promote
        assert not decide(_scores(0.90, t=1.0), BEST, GATE, champion, same).promote
        assert not decide(_scores(0.90, kupiec=0.01), BEST, GATE, champion, same).promote
    no_baseline = decide(Scores(0.9, 0.9), None, GATE)  # a run without baselines has no evidence
    assert not no_baseline.promote and "the best baseline (none scored)" in no_baseline.reasons[0]


@pytest.mark.parametrize("coverage", [0.849, 0.951, float("nan")])
def test_coverage_outside_the_band_blocks_even_a_better_model(coverage: float) -> None:
    decision = decide(_scores(0.5, coverage), BEST, GATE, champion=_scores(0.9))
    assert not decision.promote
    assert decision.failed == (f"coverage_90 {coverage:.3f} outside [0.85, 0.95]",)


def test_the_margin_against_a_champion() -> None:
    champion = _scores(0.80)
    assert not decide(_scores(0.785), BEST, GATE, champion=champion).promote  # 1.9% better: not enough
    assert decide(_scores(0.783), BEST, GATE, champion=champion).promote  # 2.1% better
    refit = decide(_scores(0.80, 0.85), BEST, GATE, champion=champion, same_procedure=True)
    assert refit.promote and refit.reasons[-1].startswith("same procedure as the champion (refit): no margin")
    # a worse refit has no skill over the best baseline
    assert not decide(_scores(1.2, skill=-0.2, t=-4.0), BEST, GATE, champion, same_procedure=True).promote


def test_the_baseline_decision_says_why_the_volatility_baseline_is_published() -> None:
    rejected = decide(_scores(0.9, t=0.4), "linear", GATE)
    why = baseline_decision("tcn v1", rejected, Scores(1.0, 0.89, kupiec_p_95=0.57), "linear")
    assert why.promote and why.tags()["stockml.promotion"] == "promoted"
    assert why.reasons[0] == f"challenger tcn v1 rejected: {rejected.reasons[0]}"
    assert why.reasons[0].startswith("challenger tcn v1 rejected: does not beat the best baseline linear")
    honest = "no champion yet: the honest forecast is the volatility baseline ewma_vol"
    assert why.reasons[1].startswith(honest)
    assert why.reasons[1].endswith("the run's best baseline, linear, has no registrable model")
    assert why.reasons[2] == "unconditional on this window: CRPS 1.000000, coverage_90 0.890, Kupiec p 0.570"
    plain = baseline_decision("tcn v1", rejected, Scores(1.0, 0.89), "ewma_vol")
    assert "best baseline" not in plain.reasons[1]


def test_gate_config_rejects_a_bad_band() -> None:
    with pytest.raises(ValueError, match="coverage_band"):
        GateConfig(coverage_band=(0.95, 0.85))


def _report(**crps_cov: tuple[float, float]) -> EvaluationReport:
    """Models with evidence against the best baseline (skill 0.05, t 3) and a VaR that passes Kupiec."""
    evidence = {"skill_crps_best": 0.05, "skill_crps_best_t": 3.0, "kupiec_p_95": 0.5}
    results = {
        n: ModelResult(kind_of(n), {"crps": c, "coverage_90": v, **evidence}, {}, (), {})
        for n, (c, v) in crps_cov.items()
    }
    fold = FoldInfo(("2021-01-04", "2021-04-30"), None, ("2021-05-03", "2021-06-30"), {})
    data = DataInfo("demo", ("000001.SZ",), "2021-01-04", "2021-06-30", 100)
    return EvaluationReport(data, 1, (0.05, 0.5, 0.95), (fold,), "random_walk", results)


def test_plan_adds_the_champions_procedure_and_best_model_picks_lowest_crps() -> None:
    # No champion yet: the volatility baseline as a model is scored too, ready to be the first champion.
    assert plan_models(EvalConfig(models=("lstm",)), None).models == ("lstm", BASELINE_MODEL)
    assert plan_models(EvalConfig(models=(BASELINE_MODEL,)), None).models == (BASELINE_MODEL,)
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
    decision = gate_challenger(cfg, "demo", Registered("lstm", v1, _scores(0.90, 0.91)), None, report, GATE)
    assert decision.promote
    assert get_alias_version(cfg, "demo", "champion") == v1
    assert client.get_model_version("demo", str(v1)).tags["stockml.promotion"] == "promoted"
    champion = current_champion(cfg, "demo")
    assert champion is not None and (champion.version, champion.model_name) == (v1, "lstm")

    # 2. A challenger 1% better than the champion on the same window: the gate wants 2% -> rejected.
    v2 = _register(cfg, tmp_path, "tcn", "v2")
    report = _report(lstm=(0.90, 0.91), tcn=(0.891, 0.90), random_walk=(1.0, 0.90))
    decision = gate_challenger(
        cfg, "demo", Registered("tcn", v2, _scores(0.891, 0.90)), champion, report, GATE
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
        cfg, "demo", Registered("tcn", v3, _scores(0.855, 0.88)), champion, report, GATE
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
    missing = decide(_scores(0.5), BEST, GATE, champion=UNSCORED)
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
    refit = Registered("lstm", v2, _scores(0.95), {"embedding_dim": 2, "hidden_size": 4})
    decision = gate_challenger(cfg, "demo", refit, champion, report, GATE)
    assert decision.promote and "same procedure as the champion" in decision.reasons[-1]
    assert get_alias_version(cfg, "demo", "champion") == v2

    # Another config of the same model: a new procedure. The report's lstm entry is the challenger's, so the
    # champion's procedure has no score on this window and the margin cannot be met -> rejected.
    v3 = register("v3", {"hidden_size": 8})
    changed = Registered("lstm", v3, _scores(0.95), {"hidden_size": 8})
    decision = gate_challenger(cfg, "demo", changed, champion, report, GATE)
    assert not decision.promote and "no CRPS on this window" in decision.reasons[-1]
    assert get_alias_version(cfg, "demo", "champion") == v2

    # Planned as plan_models does, the champion's recipe has its own entry: the margin applies to it.
    report = _report(lstm=(0.95, 0.9), **{"lstm.champion": (0.99, 0.9)}, random_walk=(1.0, 0.9))
    champion = current_champion(cfg, "demo")
    assert champion is not None
    decision = gate_challenger(cfg, "demo", changed, champion, report, GATE)
    assert decision.promote and get_alias_version(cfg, "demo", "champion") == v3
