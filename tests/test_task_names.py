"""The daily flow's per-model walk-forward task runs are named by what they evaluate."""

from __future__ import annotations

import time
import uuid

import pytest

import tasks.train
from stockml.training.config import EvalConfig, TrainConfig
from tasks.train import evaluate_model, evaluate_run_name


def test_evaluate_run_name_names_the_models_or_the_baselines() -> None:
    cfg = EvalConfig(models=("lstm",))
    assert evaluate_run_name({"eval_cfg": cfg}) == "evaluate-lstm"
    assert evaluate_run_name({"eval_cfg": cfg.model_copy(update={"models": ()})}) == "evaluate-baselines"
    both = cfg.model_copy(update={"models": ("lstm", "ptft.champion")})
    assert evaluate_run_name({"eval_cfg": both}) == "evaluate-lstm+ptft.champion"


def _task_run_name(task_run_id: uuid.UUID) -> str:
    """The name the Prefect API (and so the UI) holds for a task run; its events may land a moment late."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + 10
    with get_client(sync_client=True) as client:
        while True:
            try:
                name = client.read_task_run(task_run_id).name
            except ObjectNotFound:
                name = ""
            renamed = name and not name.startswith("evaluate-model")  # the default: evaluate-model-784
            if renamed or time.monotonic() > deadline:
                return name
            time.sleep(0.2)


@pytest.mark.slow
def test_evaluate_task_runs_are_named_by_model(
    prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow

    monkeypatch.setattr(tasks.train, "walk_forward", lambda features, eval_cfg, train_cfg: [])
    cfg, train = EvalConfig(models=("lstm",)), TrainConfig()

    @flow
    def tiny() -> list[uuid.UUID]:
        futures = [
            evaluate_model.submit(None, cfg, train),  # type: ignore[arg-type]  (no features needed)
            evaluate_model.submit(None, cfg.model_copy(update={"models": ()}), train),  # type: ignore[arg-type]
        ]
        for future in futures:
            assert future.result() == []
        return [future.task_run_id for future in futures]

    ids = tiny()
    assert [_task_run_name(i) for i in ids] == ["evaluate-lstm", "evaluate-baselines"]
