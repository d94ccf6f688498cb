"""Stage 5, evaluation: forecast metrics (pure), aggregation per horizon, the walk-forward report and run."""

from stockml.evaluation.aggregate import (
    InformationCoefficients,
    information_coefficients,
    metrics_by_horizon,
    metrics_for,
    skill,
)
from stockml.evaluation.metrics import (
    coverage,
    crps_from_quantiles,
    direction_accuracy,
    expected_shortfall,
    kupiec_pof,
    mae,
    mape,
    pinball,
    quantile_at,
    rmse,
)

__all__ = [
    "InformationCoefficients",
    "coverage",
    "crps_from_quantiles",
    "direction_accuracy",
    "expected_shortfall",
    "information_coefficients",
    "kupiec_pof",
    "mae",
    "mape",
    "metrics_by_horizon",
    "metrics_for",
    "pinball",
    "quantile_at",
    "rmse",
    "skill",
]
