"""``distilled``: a small student trained towards a teacher's quantiles, then served alone.

:func:`stockml.training.distill.fit_distilled` first trains the teacher (``ptft`` by default) on the
training window like any model, freezes it, then trains the student (``lstm`` by default) with

    (1 - alpha) * criterion(student, target) + alpha * mean |q_student - q_teacher|

where ``q_teacher`` is the frozen teacher's forecast of the same rows (detached) and the second term is
the mean absolute gap between the two forecasts' quantiles, level by level, over the valid rows. Only in
training: in eval mode (validation, early stopping, the report) the loss is the student's own forecast
loss, so early stopping judges the forecast, not the imitation. ``forward`` is the student's: serving a
distilled model costs what its student costs. The teacher travels in the state dict (one bundle) but is
never run after training.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, model_validator
from torch import Tensor

from stockml.models.base import Batch, Criterion, ForecastModel, ModelConfig, ModelSizes, flatten_for_loss
from stockml.models.ensemble import EnsembleModel


class DistilledConfig(ModelConfig):
    """``teacher`` and ``student``: registered model names (neither ``distilled`` nor ``ensemble``), each
    built from its own config; ``alpha``: the distillation term's share of the student's loss (0: the
    student alone, as if there were no teacher)."""

    teacher: str = "ptft"
    teacher_config: dict[str, Any] = Field(default_factory=dict)
    student: str = "lstm"
    student_config: dict[str, Any] = Field(default_factory=dict)
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _plain_members(self) -> DistilledConfig:
        bad = {self.teacher, self.student} & {"distilled", "ensemble"}
        if bad:
            raise ValueError(f"teacher and student must be plain models, not {sorted(bad)}")
        return self


class DistilledModel(ForecastModel):
    """The student's forecast; the teacher only shapes its training (see the module docstring)."""

    config_class = DistilledConfig

    def __init__(self, sizes: ModelSizes, config: DistilledConfig | None = None):
        from stockml.models import build_model  # the registry imports this module

        cfg = config or DistilledConfig()
        super().__init__(sizes, cfg)
        self.cfg = cfg
        # the student first: from the same seed it starts where the student model alone would
        self.student = build_model(cfg.student, sizes, self._member_config(cfg.student_config))
        self.teacher = build_model(cfg.teacher, sizes, self._member_config(cfg.teacher_config))
        for part in (self.teacher, self.student):
            if part.fits_whole or isinstance(part, EnsembleModel):
                raise ValueError(f"{type(part).__name__} is not trained by gradient: it cannot be distilled")
        # batched by date when either reads the cross-section (the teacher sees what it was trained on)
        self.cross_sectional = self.teacher.cross_sectional or self.student.cross_sectional  # type: ignore[misc]

    def _member_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {**config, "use_embeddings": False} if not self.cfg.use_embeddings else dict(config)

    def forward(self, batch: Batch) -> Tensor:
        out = self.student(batch)
        self.last_outputs = self.student.last_outputs
        return out

    def start_at_quantiles(self, values: Tensor) -> int:
        """The student's heads only: the teacher is trained (and started) on its own."""
        return self.student.start_at_quantiles(values)

    def teacher_forecast(self, batch: Batch) -> Tensor:
        """The frozen teacher's forecast of ``batch``, in eval mode (no dropout), without gradient."""
        self.teacher.eval()
        with torch.no_grad():
            return self.teacher(batch)

    def loss(self, batch: Batch, criterion: Criterion) -> Tensor:
        if not self.training or self.cfg.alpha == 0.0:
            return self.student.loss(batch, criterion)
        pred, target, mask = flatten_for_loss(self.student(batch), batch)
        if type(self.student).loss is ForecastModel.loss:  # the forecast scored: one forward does both
            own = criterion(pred, target, mask=mask, aux=self.student.aux_outputs())
        else:  # a student with an objective of its own (e.g. diffusion) runs it
            own = self.student.loss(batch, criterion)
        guide, _, _ = flatten_for_loss(self.teacher_forecast(batch), batch)
        gap = (pred - guide).abs().mean(dim=-1)  # (B', H, Q) -> (B', H)
        valid = torch.ones_like(gap, dtype=torch.bool) if mask is None else mask.bool()
        if valid.dim() < gap.dim():
            valid = valid[:, None].expand_as(gap)  # (B',) -> (B', H)
        imitation = gap[valid].mean() if valid.any() else gap.sum() * 0.0
        return (1.0 - self.cfg.alpha) * own + self.cfg.alpha * imitation

    def frozen_teacher(self) -> None:
        """Stop the teacher's parameters from learning (after it was trained)."""
        for p in self.teacher.parameters():
            p.requires_grad_(False)
