"""The champion/challenger gate: the pure decision, then promotion both ways on a real MLflow registry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from mlflow import MlflowClient
from test_bundle import feature_frame, saved_bundle
from test_tracking import cfg  # noqa: F401  (fixture: a fresh store under tmp_path)

from stockml.registry import tags as T
from stockml.registry.lifecycle import (
    Champion,
    Registered,
    best_model,
    current_champion,
    gate_challenger,
    plan_models,
)
from stockml.registry.promotion import GateConfig, Scores, decide
from stockml.registry.tracking import TrackingConfig, get_alias_version, register_bundle
from stockml.training.config import EvalConfig

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


def _report(**crps_cov: tuple[float, float]) -> dict:
    results = {n: {"metrics": {"crps": c, "coverage_90": v}} for n, (c, v) in crps_cov.items()}
    return {"results": results, "folds": [{"test": ["2021-05-03", "2021-06-30"]}]}


def test_plan_adds_the_champions_procedure_and_best_model_picks_lowest_crps() -> None:
    champion = Champion(3, "tcn", {"channels": 8})
    planned = plan_models(EvalConfig(models=("lstm",)), champion)
    assert planned.models == ("lstm", "tcn") and planned.model_configs["tcn"] == {"channels": 8}
    assert plan_models(EvalConfig(models=("tcn",)), champion).models == ("tcn",)
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
