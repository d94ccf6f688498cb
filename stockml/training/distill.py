"""Training a :class:`~stockml.models.distilled.DistilledModel`: the teacher first, then the student
towards it (the teacher frozen), both on the same training window and validation block."""

from __future__ import annotations

import time

from stockml.models.distilled import DistilledModel
from stockml.training.config import TrainConfig
from stockml.training.trainer import TrainResult, fit_gradient, train_model
from stockml.training.windows import WindowDataset


def fit_distilled(
    model: DistilledModel, train: WindowDataset, valid: WindowDataset | None, cfg: TrainConfig
) -> TrainResult:
    """Teacher with ``cfg`` (early-stopped on ``valid`` like any model), then the student with ``cfg`` and
    the same seed, so that with ``alpha = 0`` it is exactly the student model trained alone. The history
    has the teacher's epochs (``stage`` 0) then the student's (``stage`` 1)."""
    began = time.perf_counter()
    teacher = train_model(model.teacher, train, valid, cfg)
    model.frozen_teacher()
    student = fit_gradient(model, train, valid, cfg)
    history = [{"stage": 0.0, **row} for row in teacher.history]
    history += [{"stage": 1.0, **row} for row in student.history]
    return TrainResult(
        history, student.best_epoch, student.best_valid, time.perf_counter() - began, student.stopped_early
    )
