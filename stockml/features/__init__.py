"""Stage 3, features: point-in-time features, labels, per-symbol normalisation, vocabularies (no torch).

Time splits and the torch windows over a feature frame live in :mod:`stockml.training`.
"""

from stockml.features.artifacts import FeatureArtifacts
from stockml.features.config import FeatureConfig
from stockml.features.frame_schema import feature_groups, split_columns, validate_features
from stockml.features.labels import prices_from_log_returns
from stockml.features.normalizer import (
    FeatureMismatchError,
    NormParams,
    fit_normalizer,
    inverse_target,
    target_scales,
    transform_features,
    transform_target,
)
from stockml.features.pipeline import FeatureResult, build_feature_frame
from stockml.features.vocab import Vocab, fit_sector_vocab, fit_symbol_vocab

__all__ = [
    "FeatureArtifacts",
    "FeatureConfig",
    "FeatureMismatchError",
    "FeatureResult",
    "NormParams",
    "Vocab",
    "build_feature_frame",
    "feature_groups",
    "fit_normalizer",
    "fit_sector_vocab",
    "fit_symbol_vocab",
    "inverse_target",
    "target_scales",
    "prices_from_log_returns",
    "split_columns",
    "transform_features",
    "transform_target",
    "validate_features",
]
