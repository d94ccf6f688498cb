"""The model zoo: every model behind one contract (:mod:`stockml.models.base`) and one registry.

``MODELS`` maps a name to its class; :func:`build_model` validates a config dict against the
model's config class and builds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from stockml.models.attention_lstm import AttentionLSTMModel
from stockml.models.base import DEFAULT_QUANTILES, ForecastModel, ModelConfig, ModelSizes
from stockml.models.bilstm import BiLSTMModel
from stockml.models.cnn_lstm import CNNLSTMModel
from stockml.models.diffusion import DiffusionModel
from stockml.models.distilled import DistilledModel
from stockml.models.ensemble import EnsembleModel
from stockml.models.gbm import LightGBMModel
from stockml.models.graph import GraphModel
from stockml.models.hybrid import HybridModel
from stockml.models.hybrid21 import Hybrid21Model
from stockml.models.lstm import LSTMModel
from stockml.models.multibranch import MultiBranchModel
from stockml.models.ptft import PTFTModel
from stockml.models.ptft_vssm import PTFTVSSMModel
from stockml.models.tcn import TCNModel
from stockml.models.transformer import TransformerModel
from stockml.models.unconditional import UnconditionalModel
from stockml.models.vssm import VSSMModel

MODELS: dict[str, type[ForecastModel]] = {
    "lstm": LSTMModel,
    "bilstm": BiLSTMModel,
    "attention_lstm": AttentionLSTMModel,
    "tcn": TCNModel,
    "transformer": TransformerModel,
    "cnn_lstm": CNNLSTMModel,
    "multibranch": MultiBranchModel,
    "ptft": PTFTModel,
    "vssm": VSSMModel,
    "ptft_vssm": PTFTVSSMModel,
    "hybrid": HybridModel,
    "hybrid21": Hybrid21Model,
    "diffusion": DiffusionModel,
    "graph": GraphModel,
    "lightgbm": LightGBMModel,
    "unconditional": UnconditionalModel,
    "ensemble": EnsembleModel,
    "distilled": DistilledModel,
}


def build_config(name: str, config: Mapping[str, Any] | ModelConfig | None = None) -> ModelConfig:
    """Validate ``config`` (a dict, a config object or None for defaults) for model ``name``."""
    cls = _model_class(name)
    if isinstance(config, BaseModel):
        config = config.model_dump()
    return cls.config_class.model_validate(dict(config or {}))


def build_model(
    name: str, sizes: ModelSizes, config: Mapping[str, Any] | ModelConfig | None = None
) -> ForecastModel:
    """Build the registered model ``name``; unknown config keys or bad values raise pydantic's error."""
    cls = _model_class(name)
    return cls(sizes, build_config(name, config))


def _model_class(name: str) -> type[ForecastModel]:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(sorted(MODELS))}") from None


__all__ = [
    "DEFAULT_QUANTILES",
    "MODELS",
    "ForecastModel",
    "ModelConfig",
    "ModelSizes",
    "build_config",
    "build_model",
]
