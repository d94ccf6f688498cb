"""The fitted transforms a model needs at inference, saved side by side in one folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stockml.features.normalizer import NormParams
from stockml.features.vocab import Vocab

NORM_FILE = "norm_params.json"
SYMBOL_VOCAB_FILE = "symbol_vocab.json"
SECTOR_VOCAB_FILE = "sector_vocab.json"


@dataclass(frozen=True)
class FeatureArtifacts:
    norm: NormParams
    symbol_vocab: Vocab
    sector_vocab: Vocab

    def save(self, folder: Path) -> list[Path]:
        return [
            self.norm.save(folder / NORM_FILE),
            self.symbol_vocab.save(folder / SYMBOL_VOCAB_FILE),
            self.sector_vocab.save(folder / SECTOR_VOCAB_FILE),
        ]

    @classmethod
    def load(cls, folder: Path) -> FeatureArtifacts:
        return cls(
            NormParams.load(folder / NORM_FILE),
            Vocab.load(folder / SYMBOL_VOCAB_FILE),
            Vocab.load(folder / SECTOR_VOCAB_FILE),
        )
