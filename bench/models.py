"""Training speed of the models on the same data: seconds per epoch, ms per step, parameters, ratio to lstm.

    python bench/models.py                                   # demo market, 20 symbols x 5 years
    python bench/models.py --sample                          # the real A-share sample (10 stocks, 2020-2024)
    python bench/models.py --models lstm,ptft --epochs 5 --threads 1 --json out.json

Builds features as ``stockml evaluate`` does (H 5, lookback 30, no macro inputs), takes the last
walk-forward fold (training dates before a 60-day validation block and a 40-day test block) and trains
each model, seeded, with the library's trainer (``train_model``, the default ``TrainConfig``: batch 256,
AdamW, cosine schedule) for one warm-up epoch and ``--epochs`` timed ones. Training runs without the
validation segment, so an epoch is exactly the optimiser steps over the training windows (a user's run adds
a forward pass over the validation block, a few percent). Epoch times are read at the trainer's own
end-of-epoch log line; the table prints the median over the timed epochs, that over the steps per epoch,
the parameter count and the ratio to ``lstm``'s epoch. Gradient-trained models only (not ``lightgbm`` or
``ensemble``, which are fitted whole).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch

from stockml.evaluation.run import feature_config_for
from stockml.features import FeatureResult, build_feature_frame
from stockml.models import MODELS, ModelSizes
from stockml.models.ensemble import EnsembleModel
from stockml.sources.base import MarketData
from stockml.sources.demo import DemoConfig, DemoSource
from stockml.sources.local import LocalSource
from stockml.store.ingest import validate_batch
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.splits import walk_forward_folds
from stockml.training.trainer import n_batches, train_model
from stockml.training.walkforward import fit_on_window, new_model
from stockml.training.windows import WindowDataset

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "ashare_sample"
DEFAULT_MODELS = "lstm,tcn,ptft,ptft_vssm,hybrid"


@dataclass(frozen=True)
class Timing:
    model: str
    epoch_s: float  # median over the timed epochs
    step_ms: float
    steps: int  # optimiser steps per epoch
    params: int
    epochs_s: list[float]  # every timed epoch
    vs_lstm: float | None = None


class _EpochClock(logging.Handler):
    """Notes the time of each of the trainer's end-of-epoch log lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if " epoch " in str(record.msg):
            self.times.append(time.perf_counter())


def load_data(args: argparse.Namespace, reports: Path) -> tuple[MarketData, str]:
    """The real sample or a demo market, validated as an ingest validates it."""
    if args.sample:
        start, end = dt.date(2020, 1, 1), dt.date(2024, 12, 31)
        data, what = LocalSource(SAMPLE).fetch(start, end), f"A-share sample {SAMPLE.name}, {start}..{end}"
    else:
        end = dt.date(2024, 12, 31)
        start = end - dt.timedelta(days=round(365.25 * args.years) - 1)
        config = DemoConfig(n_symbols=args.symbols, n_sectors=min(5, args.symbols), start=start, end=end)
        data = DemoSource(config).fetch(start, end)
        what = f"demo market, {args.symbols} symbols, {start}..{end}"
    return validate_batch(data, dt.date.today(), reports, "bench_models"), what


def training_windows(
    features: FeatureResult, cfg: EvalConfig
) -> tuple[WindowDataset, ModelSizes, pd.Timestamp, pd.Timestamp]:
    """The last walk-forward fold's training windows, normalised on its training dates, and its sizes."""
    frame = features.frame
    dates = pd.DatetimeIndex(sorted(frame["trade_date"].unique()))
    fold = walk_forward_folds(
        dates, 1, cfg.test_days, cfg.horizon, min_train_days=cfg.min_train_days, valid_days=cfg.valid_days
    )[-1]
    _, _, arrays, sizes = fit_on_window(
        frame, features.feature_columns, features.label_columns, fold.train, cfg, features.sector_vocab.size
    )
    train = WindowDataset.for_segment(arrays, cfg.lookback, fold.train, history_before_start=True)
    return train, sizes, fold.train.start, fold.train.end


def time_model(
    name: str, train: WindowDataset, sizes: ModelSizes, cfg: EvalConfig, args: argparse.Namespace
) -> Timing:
    model = new_model(name, sizes, cfg, seed=0)
    train_cfg = TrainConfig(
        max_epochs=1 + args.epochs, batch_size=args.batch_size, device=args.device, progress=False, seed=0
    )
    clock = _EpochClock()
    trainer_log = logging.getLogger("stockml.training.trainer")
    trainer_log.addHandler(clock)
    trainer_log.setLevel(logging.INFO)
    try:
        train_model(model, train, None, train_cfg)
    finally:
        trainer_log.removeHandler(clock)
    epochs = [b - a for a, b in zip(clock.times, clock.times[1:], strict=False)]  # the warm-up one dropped
    steps = n_batches(train, args.batch_size, by_date=model.cross_sectional)
    epoch = statistics.median(epochs)
    params = sum(p.numel() for p in model.parameters())
    return Timing(name, epoch, 1000 * epoch / steps, steps, params, epochs)


def print_table(rows: list[Timing]) -> None:
    print(f"{'model':<14}{'epoch s':>10}{'ms/step':>10}{'steps':>8}{'params':>10}{'x lstm':>9}   epochs s")
    for r in rows:
        ratio = f"{r.vs_lstm:.1f}" if r.vs_lstm is not None else "-"
        each = " ".join(f"{s:.2f}" for s in r.epochs_s)
        print(
            f"{r.model:<14}{r.epoch_s:>10.2f}{r.step_ms:>10.1f}{r.steps:>8}{r.params:>10,}{ratio:>9}   {each}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--sample", action="store_true", help="the real A-share sample instead of the demo")
    parser.add_argument("--symbols", type=int, default=20, help="demo market: symbols")
    parser.add_argument("--years", type=float, default=5.0, help="demo market: years up to 2024-12-31")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs, after one warm-up epoch")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows and the setup here")
    args = parser.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; registered: {', '.join(sorted(MODELS))}")
    whole = [m for m in names if MODELS[m].fits_whole or issubclass(MODELS[m], EnsembleModel)]
    if whole:
        parser.error(f"{whole} are fitted whole, not by epochs; this bench times gradient-trained models")
    if args.sample and not SAMPLE.is_dir():
        print(f"no sample data at {SAMPLE}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = EvalConfig(folds=1, test_days=40, valid_days=60)
    with tempfile.TemporaryDirectory() as reports:
        data, what = load_data(args, Path(reports))
    features = build_feature_frame(data, feature_config_for(cfg))
    train, sizes, start, end = training_windows(features, cfg)
    setup = {
        "data": what,
        "train": f"{start.date()}..{end.date()}",
        "windows": len(train),
        "features": len(features.feature_columns),
        "lookback": cfg.lookback,
        "horizon": cfg.horizon,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    print(", ".join(f"{k} {v}" for k, v in setup.items()))
    rows = []
    for name in names:
        rows.append(time_model(name, train, sizes, cfg, args))
        print(f"  {name}: {rows[-1].epoch_s:.2f} s per epoch", file=sys.stderr)
    lstm = next((r.epoch_s for r in rows if r.model == "lstm"), None)
    if lstm:
        rows = [Timing(**{**asdict(r), "vs_lstm": r.epoch_s / lstm}) for r in rows]
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"setup": setup, "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
