"""Versioned JSON files of frozen pydantic models (the fitted normaliser and vocabularies): one writer,
one reader, so every fitted transform is saved and checked the same way."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def write_model_json(model: BaseModel, path: Path) -> Path:
    """``model`` as indented JSON at ``path`` (folders created), written aside and then renamed, so a
    reader never sees a half-written file. Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(model.model_dump_json(indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_model_json(cls: type[M], path: Path, version: int, what: str) -> M:
    """``path`` validated as a ``cls``; raises ``ValueError`` unless its ``version`` field is ``version``
    (``what`` names the file's contents in the message)."""
    model = cls.model_validate_json(path.read_text(encoding="utf-8"))
    found = getattr(model, "version", None)
    if found != version:
        raise ValueError(f"{path}: {what} version {found}, this code reads {version}")
    return model
