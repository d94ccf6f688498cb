"""``distilled``: a teacher trained first, a student trained towards it, the student served alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from test_gbm import LEVELS, _dataset

from stockml.losses import PinballLoss
from stockml.models import ModelSizes, build_model
from stockml.models.distilled import DistilledModel
from stockml.training.config import TrainConfig
from stockml.training.trainer import predict, train_model

SIZES = ModelSizes(n_features=4, horizon=2, quantiles=LEVELS, n_symbols=3, n_sectors=2)
TEACHER = {"teacher": "bilstm", "teacher_config": {"hidden_size": 16}}
CFG = TrainConfig(seed=3, max_epochs=3, batch_size=64, progress=False)


def _trained(name: str, config: dict | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, SIZES, config)
    train_model(model, _dataset(300, 1), _dataset(60, 2), CFG)
    return model


@pytest.fixture(scope="module")
def alone_and_distilled() -> tuple[torch.nn.Module, DistilledModel, DistilledModel]:
    alone = _trained("lstm")
    none = _trained("distilled", {**TEACHER, "alpha": 0.0})
    taught = _trained("distilled", {**TEACHER, "alpha": 0.8})
    assert isinstance(none, DistilledModel) and isinstance(taught, DistilledModel)
    return alone, none, taught


def test_without_the_imitation_term_the_student_is_the_model_trained_alone(alone_and_distilled) -> None:
    """alpha = 0: same seed, same start, same batches and dropout: exactly the lstm trained on its own
    (the teacher's training in between does not shift the student's random numbers)."""
    alone, none, _ = alone_and_distilled
    test = _dataset(80, 9)
    np.testing.assert_array_equal(predict(none, test)[0], predict(alone, test)[0])


def test_the_imitation_term_pulls_the_student_towards_its_frozen_teacher(alone_and_distilled) -> None:
    _, none, taught = alone_and_distilled
    assert all(not p.requires_grad for p in taught.teacher.parameters())  # frozen after its own training
    assert all(p.requires_grad for p in taught.student.parameters())
    test = _dataset(80, 9)
    guide = predict(taught.teacher, test)[0]

    def gap(model: DistilledModel) -> float:
        return float(np.abs(predict(model, test)[0] - guide).mean())

    assert gap(taught) < 0.9 * gap(none)


def test_the_loss_imitates_only_in_training_and_forward_is_the_students(alone_and_distilled) -> None:
    _, _, taught = alone_and_distilled
    test = _dataset(80, 9)
    batch = test.get_batch(np.arange(64))
    criterion = PinballLoss(LEVELS)
    taught.eval()
    with torch.no_grad():
        assert torch.equal(taught(batch), taught.student(batch))
        assert float(taught.loss(batch, criterion)) == pytest.approx(
            float(taught.student.loss(batch, criterion))
        )
    taught.train()
    torch.manual_seed(0)
    mixed = taught.loss(batch, criterion)
    torch.manual_seed(0)
    own = taught.student.loss(batch, criterion).detach()
    torch.manual_seed(0)
    with torch.no_grad():
        imitation = (taught.student(batch) - taught.teacher_forecast(batch)).abs().mean()
    assert float(mixed.detach()) == pytest.approx(0.2 * float(own) + 0.8 * float(imitation), rel=1e-5)
    taught.eval()


def test_the_history_has_both_stages_and_bad_members_are_refused() -> None:
    torch.manual_seed(0)
    model = build_model("distilled", SIZES, {**TEACHER, "student_config": {"hidden_size": 8}})
    result = train_model(model, _dataset(80, 1), _dataset(30, 2), CFG.model_copy(update={"max_epochs": 2}))
    assert [row["stage"] for row in result.history] == [0.0, 0.0, 1.0, 1.0]
    for bad in ({"teacher": "ensemble"}, {"student": "distilled"}, {"alpha": 1.5}):
        with pytest.raises(ValidationError):
            build_model("distilled", SIZES, bad)
    with pytest.raises(ValueError, match="cannot be distilled"):
        build_model("distilled", SIZES, {"teacher": "lightgbm"})


def test_staged_training_trains_the_fusion_alone_first() -> None:
    """fusion_epochs = max_epochs: only the hybrid's gate learns, every branch keeps its start; after
    training every parameter can learn again. A model without a fusion trains whole."""
    off = {"enabled": False}
    config = {"hidden_size": 8, "branches": {"ptft": off, "vssm": off, "diffusion": off, "graph": off}}
    torch.manual_seed(0)
    model = build_model("hybrid", SIZES, config)
    cfg = CFG.model_copy(update={"max_epochs": 2, "fusion_epochs": 2, "max_batches_per_epoch": 5})
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.start_at_quantiles = lambda values: 0  # type: ignore[method-assign]  # heads as built
    train_model(model, _dataset(80, 1), None, cfg)
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {"gate.weight", "gate.bias"}
    assert all(p.requires_grad for p in model.parameters())
    # a model without a fusion (the same TrainConfig trains every model of a run) trains whole
    torch.manual_seed(0)
    plain = build_model("lstm", SIZES, {"hidden_size": 8})
    before = {n: p.detach().clone() for n, p in plain.named_parameters()}
    train_model(plain, _dataset(80, 1), None, cfg)
    assert all(not torch.equal(p, before[n]) for n, p in plain.named_parameters())
