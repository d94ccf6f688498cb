"""Point-in-time features, labels, normalisation, vocabularies, splits and windows.

The torch parts live in :mod:`stockml.features.windows` and :mod:`stockml.features.cross_section`;
import them from there (this package does not import torch).
"""

from stockml.features.artifacts import FeatureArtifacts
from stockml.features.config import FeatureConfig
from stockml.features.labels import prices_from_log_returns
from stockml.features.normalize import (
    FeatureMismatchError,
    NormParams,
    fit_normalizer,
    inverse_target,
    transform_features,
    transform_target,
)
from stockml.features.pipeline import FeatureResult, build_feature_frame
from stockml.features.schema import feature_groups, split_columns, validate_features
from stockml.features.splits import DateRange, Fold, Segments, walk_forward_folds
from stockml.features.vocab import Vocab, fit_sector_vocab, fit_symbol_vocab

__all__ = [
    "DateRange",
    "FeatureArtifacts",
    "FeatureConfig",
    "FeatureMismatchError",
    "FeatureResult",
    "Fold",
    "NormParams",
    "Segments",
    "Vocab",
    "build_feature_frame",
    "feature_groups",
    "fit_normalizer",
    "fit_sector_vocab",
    "fit_symbol_vocab",
    "inverse_target",
    "prices_from_log_returns",
    "split_columns",
    "transform_features",
    "transform_target",
    "validate_features",
    "walk_forward_folds",
]
