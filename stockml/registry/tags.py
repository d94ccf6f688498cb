"""The names that cross the registry boundary, defined once: model-version tag keys and the formats of
the evaluation window (``"2024-07-08..2024-12-31"``) and of the model config they carry."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

MODEL_NAME = "stockml.model_name"
MODEL_CONFIG = "stockml.model_config"
TRAIN_START = "stockml.train_start"
TRAIN_END = "stockml.train_end"
VERSION = "stockml.version"
RUN_ID = "stockml.run_id"
EVAL_WINDOW = "stockml.eval_window"
EVAL_CRPS = "stockml.eval_crps"
EVAL_COVERAGE_90 = "stockml.eval_coverage_90"
EVAL_SKILL_CRPS = "stockml.eval_skill_crps"
PROMOTION = "stockml.promotion"
PROMOTION_REASONS = "stockml.promotion_reasons"
COMPARED_WITH_VERSION = "stockml.compared_with_version"
REFIT_OF = "stockml.refit_of"
CALIBRATION = "stockml.calibration"  # the online calibration state learned since registration (JSON)

_WINDOW_SEP = ".."


def format_window(start: str | dt.date, end: str | dt.date) -> str:
    """``(start, end)`` -> ``"start..end"`` (ISO dates)."""
    return f"{start}{_WINDOW_SEP}{end}"


def config_tag(config: Mapping[str, Any] | None) -> str:
    """A model config as ``MODEL_CONFIG`` holds it: canonical JSON (keys sorted), ``{}`` for the defaults."""
    return json.dumps(dict(config or {}), sort_keys=True)


def parse_window(text: str) -> tuple[dt.date, dt.date]:
    """``"start..end"`` -> (start, end); a clear error for anything else."""
    start, sep, end = text.partition(_WINDOW_SEP)
    if not sep:
        raise ValueError(f"not an evaluation window 'YYYY-MM-DD..YYYY-MM-DD': {text!r}")
    return dt.date.fromisoformat(start), dt.date.fromisoformat(end)
