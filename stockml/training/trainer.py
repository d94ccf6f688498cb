"""One trainer for every registered model: AdamW, LR schedules, clipping, early stopping on a
time-based validation segment, best-checkpoint restore, seeded, CUDA (bf16 autocast) or CPU.

The model's ``loss(batch, criterion)`` is the training objective; the trainer never looks inside.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from stockml.losses import build_loss
from stockml.models import ForecastModel
from stockml.models.base import Batch, target_quantiles
from stockml.models.distilled import DistilledModel
from stockml.models.ensemble import EnsembleModel
from stockml.training.config import TrainConfig
from stockml.training.windows import WindowDataset, to_device

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_valid: float = math.nan
    seconds: float = 0.0
    stopped_early: bool = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (CPU for a model without parameters, e.g. gradient boosting)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def whole(ds: WindowDataset, steps: int, chunk: int = 4096) -> Batch:
    """Every sample of ``ds`` as one batch, ``x`` cut to the window's last ``steps`` steps (0: all)."""
    parts = [ds.get_batch(np.arange(lo, min(lo + chunk, len(ds)))) for lo in range(0, len(ds), chunk)]
    if steps:
        parts = [{**p, "x": p["x"][:, -steps:]} for p in parts]
    return {
        k: torch.cat([p[k] for p in parts]) if isinstance(parts[0][k], torch.Tensor) else
        [v for p in parts for v in p[k]]
        for k in parts[0]
    }  # fmt: skip


def _fit_whole(
    model: ForecastModel, train: WindowDataset, valid: WindowDataset | None, cfg: TrainConfig
) -> TrainResult:
    began = time.perf_counter()
    use_valid = valid is not None and len(valid) > 0 and not cfg.full_train
    steps = model.window_steps
    history = model.fit_whole(
        whole(train, steps), whole(valid, steps) if use_valid and valid else None, cfg.seed
    )
    model.eval()
    best = history[-1].get("valid_loss", math.nan) if history else math.nan
    return TrainResult(history, len(history) - 1, best, time.perf_counter() - began)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _date_groups(ds: WindowDataset) -> list[np.ndarray]:
    """Dataset positions grouped by date, in date order."""
    days = ds.arrays.day[ds.rows]
    order = np.argsort(days, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(days[order])) + 1) if len(order) else []


def _pack(groups: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Whole date groups packed in order into batches of about ``size`` rows (a date is never split)."""
    packed: list[np.ndarray] = []
    current: list[np.ndarray] = []
    rows = 0
    for group in groups:
        if current and rows + len(group) > size:
            packed.append(np.concatenate(current))
            current, rows = [], 0
        current.append(group)
        rows += len(group)
    if current:
        packed.append(np.concatenate(current))
    return packed


def _date_batches(ds: WindowDataset, size: int, shuffle: bool, seed: int) -> list[np.ndarray]:
    groups = _date_groups(ds)
    if shuffle:
        groups = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    return _pack(groups, size)


def n_batches(ds: WindowDataset, size: int, *, by_date: bool) -> int:
    """Batches in one pass over ``ds``; by date, whole dates packed into batches of about ``size`` rows."""
    return len(_date_batches(ds, size, False, 0)) if by_date else math.ceil(len(ds) / size)


def batches(ds: WindowDataset, size: int, *, by_date: bool, shuffle: bool, seed: int) -> Iterator[Batch]:
    """Batches of a dataset; ``by_date`` makes each batch a set of whole dates' cross-sections (for
    models that declare ``cross_sectional``: they mix only rows of the same ``date``)."""
    if not by_date:
        yield from ds.iter_batches(size, shuffle=shuffle, seed=seed)
        return
    for group in _date_batches(ds, size, shuffle, seed):
        yield ds.get_batch(group)


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int) -> object | None:
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total_steps, 1))
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(cfg.patience // 2, 1))
    if cfg.schedule == "cosine":
        warm = min(cfg.warmup_steps, max(total_steps - 1, 0))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / (warm + 1)
            progress = (step - warm) / max(total_steps - warm, 1)
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return None


@torch.no_grad()
def mean_loss(model: ForecastModel, ds: WindowDataset, criterion: nn.Module, cfg: TrainConfig) -> float:
    model.eval()
    device = model_device(model)
    total, count = 0.0, 0
    for batch in batches(ds, cfg.batch_size, by_date=model.cross_sectional, shuffle=False, seed=0):
        n = len(batch["ts_code"])
        total += float(model.loss(to_device(batch, device), criterion)) * n
        count += n
    return total / max(count, 1)


def train_model(
    model: ForecastModel,
    train: WindowDataset,
    valid: WindowDataset | None,
    cfg: TrainConfig,
) -> TrainResult:
    """Fit ``model`` in place; with a validation set, restore the best epoch's weights.

    Quantile heads first start at the training targets' empirical quantiles (``cfg.start_at_quantiles``).
    A model that declares ``cross_sectional`` is batched by whole dates; every other one row-independently.
    A ``fits_whole`` model (gradient boosting) gets every training and validation row in one call; an
    ensemble fits its members this way, then its weights (:mod:`stockml.training.ensemble`).
    """
    seed_everything(cfg.seed)
    if isinstance(model, EnsembleModel):
        from stockml.training.ensemble import fit_ensemble  # it fits each member with this function

        return fit_ensemble(model, train, valid, cfg)
    if isinstance(model, DistilledModel):
        from stockml.training.distill import fit_distilled  # it fits the teacher with this function

        return fit_distilled(model, train, valid, cfg)
    if model.fits_whole:
        return _fit_whole(model, train, valid, cfg)
    return fit_gradient(model, train, valid, cfg)


def fit_gradient(
    model: ForecastModel, train: WindowDataset, valid: WindowDataset | None, cfg: TrainConfig
) -> TrainResult:
    """The gradient loop of :func:`train_model` (seeded here too, so a caller that trained something
    before, e.g. a teacher, starts this loop where a model trained alone would)."""
    seed_everything(cfg.seed)
    stages = _Stages(model, cfg.fusion_epochs)
    by_date = model.cross_sectional
    if cfg.start_at_quantiles and len(train):
        model.start_at_quantiles(empirical_quantiles(train, model.sizes.quantiles))
    device = pick_device(cfg.device)
    model.to(device)
    criterion = build_loss(cfg.loss or model.default_loss, model.sizes.quantiles, cfg.loss_config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = n_batches(train, cfg.batch_size, by_date=by_date)
    per_epoch = min(per_epoch, cfg.max_batches_per_epoch or per_epoch)
    sched = _scheduler(opt, cfg, per_epoch * cfg.max_epochs)
    use_valid = valid is not None and len(valid) > 0 and not cfg.full_train
    show_bar = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
    result, best_state, bad, began = TrainResult(), None, 0, time.perf_counter()
    for epoch in range(cfg.max_epochs):
        stages.enter(epoch)
        model.train()
        losses = []
        stream = batches(train, cfg.batch_size, by_date=by_date, shuffle=True, seed=cfg.seed + epoch)
        for step, batch in enumerate(_progress(stream, per_epoch, show_bar, epoch)):
            if step >= per_epoch:
                break
            batch = to_device(batch, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = model.loss(batch, criterion)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if isinstance(sched, torch.optim.lr_scheduler.LRScheduler) and cfg.schedule != "plateau":
                sched.step()
            losses.append(float(loss.detach()))
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else math.nan,
            "lr": opt.param_groups[0]["lr"],
        }
        if use_valid:
            assert valid is not None
            row["valid_loss"] = mean_loss(model, valid, criterion, cfg)
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(row["valid_loss"])
        result.history.append(row)
        elapsed = time.perf_counter() - began
        log.info(
            "%s epoch %d/%d: train %.5f valid %s lr %.2e, %.1f s, at most %.0f s left",
            type(model).__name__,
            epoch + 1,
            cfg.max_epochs,
            row["train_loss"],
            f"{row.get('valid_loss', math.nan):.5f}",
            row["lr"],
            elapsed,
            elapsed / (epoch + 1) * (cfg.max_epochs - epoch - 1),
        )
        if not use_valid:
            result.best_epoch = epoch
            continue
        if (
            row["valid_loss"]
            < (result.best_valid if not math.isnan(result.best_valid) else math.inf) - cfg.min_delta
        ):
            result.best_epoch, result.best_valid, bad = epoch, row["valid_loss"], 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                result.stopped_early = True
                break
    stages.enter(cfg.max_epochs)  # everything as it was before
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - began
    return result


class _Stages:
    """Staged training: before ``fusion_epochs`` only the model's fusion parameters learn (the branches
    frozen), from then on every parameter that could learn before (a distilled model's teacher stays
    frozen). A model without a fusion (one ``TrainConfig`` serves every model of an evaluation) trains
    whole from the start, and the log says so."""

    def __init__(self, model: ForecastModel, fusion_epochs: int):
        fusion = model.fusion_parameters() if fusion_epochs else []
        if fusion is None:
            log.info("%s has no fusion parameters: staged training does not apply", type(model).__name__)
        self.fusion_epochs = fusion_epochs if fusion is not None else 0
        self.could = {p: p.requires_grad for p in model.parameters()}
        self.fusion = set(fusion or [])

    def enter(self, epoch: int) -> None:
        fusion_only = epoch < self.fusion_epochs
        for p, could in self.could.items():
            p.requires_grad_(could and (p in self.fusion or not fusion_only))


def empirical_quantiles(ds: WindowDataset, levels: tuple[float, ...]) -> torch.Tensor:
    """(H, Q) quantiles of the dataset's model-scale targets, per horizon (the unconditional forecast)."""
    return target_quantiles(ds.arrays.target[ds.rows], levels)


def _progress(stream: Iterator[Batch], total: int, show: bool, epoch: int) -> Iterator[Batch]:
    if not show:
        return stream
    from tqdm import tqdm

    return iter(tqdm(stream, total=total, desc=f"epoch {epoch}", leave=False))


@torch.no_grad()
def predict(model: ForecastModel, ds: WindowDataset, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Model-scale quantiles (N, H, Q) for every sample, and the dataset positions they belong to
    (whole dates for a ``cross_sectional`` model, which mixes only rows of the same date)."""
    model.eval()
    device = model_device(model)
    outs, order = [], []
    if model.cross_sectional:
        groups = _date_batches(ds, batch_size, False, 0)
    else:
        groups = [np.arange(lo, min(lo + batch_size, len(ds))) for lo in range(0, len(ds), batch_size)]
    for group in groups:
        batch = to_device(ds.get_batch(group), device)
        outs.append(model(batch).float().cpu().numpy())
        order.append(group)
    if not outs:
        return np.empty((0, model.sizes.horizon, model.sizes.n_quantiles), np.float32), np.empty(0, np.int64)
    return np.concatenate(outs), np.concatenate(order)
