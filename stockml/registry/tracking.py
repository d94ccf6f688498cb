"""The MLflow adapter: runs (params, metrics, artifacts, dataset inputs) and the model registry (versions,
tags, aliases, descriptions).

The only module that imports mlflow, and only inside functions: importing this module is cheap and
changes nothing (no tracking URI, no folders). Every function takes a :class:`TrackingConfig`;
:func:`configure` is where the tracking URI is set and local folders are created.

Telemetry is the caller's business: set ``MLFLOW_DISABLE_TELEMETRY=true`` (and ``DO_NOT_TRACK=true``)
in the environment that runs this code.
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pandas as pd
from pydantic import BaseModel, ConfigDict

from stockml.evaluation.calibration import AciState
from stockml.registry import tags as T
from stockml.registry.bundle import BUNDLE_FILE, BundleMeta, load_bundle

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value (mlflow.utils.validation)
MAX_TAG_LENGTH = 8000
MAX_DESCRIPTION_LENGTH = 5000  # the registry's description column (VARCHAR(5000) in SQL stores)
REMOTE_SCHEMES = ("http", "https", "databricks")
MODEL_ARTIFACT = "model"
RAW = "raw"  # the pyfunc's ``calibration`` param for uncalibrated quantiles
# What the registered pyfunc model needs at load time, pinned to the versions installed here.
# stockml itself is not on a package index: the serving environment must have it installed.
REQUIREMENTS = ("mlflow", "torch", "numpy", "pandas", "pydantic", "pandera")


class TrackingConfig(BaseModel):
    """Where runs and models go.

    ``tracking_uri`` None: a SQLite store ``<root>/mlflow.db`` with artifacts in ``<root>/artifacts``
    (both absolute). A remote ``http(s)://`` URI is used unchanged and its server chooses where
    artifacts go unless ``artifact_root`` is given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: Path = Path("mlruns")
    tracking_uri: str | None = None
    artifact_root: str | None = None
    experiment: str = "stockml"

    @property
    def is_remote(self) -> bool:
        return self.tracking_uri is not None and urlparse(self.tracking_uri).scheme in REMOTE_SCHEMES

    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri is not None:
            return self.tracking_uri
        return f"sqlite:///{(self.root / 'mlflow.db').resolve()}"

    def resolved_artifact_root(self) -> str | None:
        """URI of the experiment's artifact location (None: the server decides)."""
        if self.artifact_root is not None:
            if "://" in self.artifact_root:
                return self.artifact_root
            return Path(self.artifact_root).resolve().as_uri()
        return None if self.is_remote else (self.root / "artifacts").resolve().as_uri()


def configure(cfg: TrackingConfig) -> str:
    """Point MLflow at ``cfg`` (local folders created here), get or create the experiment; its id."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if cfg.tracking_uri is None:
        cfg.root.resolve().mkdir(parents=True, exist_ok=True)
    artifact_root = cfg.resolved_artifact_root()
    if artifact_root is not None and artifact_root.startswith("file://"):
        Path(urlparse(artifact_root).path).mkdir(parents=True, exist_ok=True)
    uri = cfg.resolved_tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(cfg.experiment)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        try:
            experiment_id = client.create_experiment(cfg.experiment, artifact_location=artifact_root)
        except MlflowException:  # created meanwhile by another process
            found = client.get_experiment_by_name(cfg.experiment)
            if found is None:
                raise
            experiment_id = found.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return str(experiment_id)


def git_commit(path: Path | None = None) -> str | None:
    """``git rev-parse HEAD`` of the repository holding ``path`` (default: this package); None if none."""
    cwd = path if path is not None else Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings (and pydantic models) -> ``{"a.b": "value"}``; values cut to MLflow's limit."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
            continue
        text = json.dumps(value, default=str) if isinstance(value, list | tuple) else str(value)
        out[name] = text[:MAX_PARAM_LENGTH]
    return out


def clean_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metrics as floats, without None and NaN (MLflow would store NaN; a missing value is clearer)."""
    return {k: float(v) for k, v in metrics.items() if v is not None and not math.isnan(float(v))}


@contextmanager
def start_run(
    cfg: TrackingConfig,
    *,
    run_name: str,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    started_at: float | None = None,
) -> Iterator[str]:
    """An MLflow run (FINISHED on exit, FAILED on error); yields its id.

    ``nested``: a child of the run active in this thread; ``parent_run_id``: a child of that run.
    ``started_at`` (epoch seconds): when the work the run records began (e.g. before training, for a run
    logged in one go afterwards), so the UI's start time and duration are the work's. A ``git_commit`` tag
    is added when the code lives in a git repository.
    """
    import mlflow

    experiment_id = configure(cfg)
    all_tags = {"git_commit": commit} if (commit := git_commit()) else {}
    all_tags.update({k: str(v)[:MAX_TAG_LENGTH] for k, v in (tags or {}).items()})
    if started_at is not None and not nested and parent_run_id is None:
        created = _client(cfg).create_run(
            experiment_id, start_time=int(started_at * 1000), tags=all_tags, run_name=run_name
        )
        with mlflow.start_run(run_id=created.info.run_id) as run:
            yield run.info.run_id
        return
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        nested=nested or parent_run_id is not None,
        parent_run_id=parent_run_id,
        tags=all_tags,
    ) as run:
        yield run.info.run_id


def log_params(cfg: TrackingConfig, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    flat = flatten_params(params)
    if flat:
        _client(cfg).log_batch(run_id, params=[Param(k, v) for k, v in flat.items()])


def log_metrics(
    cfg: TrackingConfig,
    run_id: str,
    metrics: Mapping[str, Any] | None = None,
    step_metrics: Iterable[tuple[str, Any, int]] = (),
    step: int = 0,
) -> None:
    """``metrics`` at ``step``, plus ``(key, value, step)`` records (per fold or epoch); NaN/None skipped."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    records = [Metric(k, v, now, step) for k, v in clean_metrics(metrics or {}).items()]
    for key, value, at in step_metrics:
        records += [Metric(key, v, now, int(at)) for v in clean_metrics({key: value}).values()]
    if records:
        _client(cfg).log_batch(run_id, metrics=records)


def download_artifacts(cfg: TrackingConfig, run_id: str, path: str, dst: Path) -> Path:
    """A run's artifact folder or file ``path`` copied under ``dst``; returns the local copy."""
    return Path(_client(cfg).download_artifacts(run_id, path, str(dst)))


def log_artifacts(cfg: TrackingConfig, run_id: str, artifacts: Mapping[str, Path]) -> None:
    """``{artifact_path: local file or folder}``; ``""`` logs at the run's artifact root."""
    client = _client(cfg)
    for artifact_path, local in artifacts.items():
        local = Path(local)
        if local.is_dir():
            client.log_artifacts(run_id, str(local), artifact_path or None)
        elif local.is_file():
            client.log_artifact(run_id, str(local), artifact_path or None)
        else:
            raise FileNotFoundError(f"artifact {artifact_path!r}: {local} does not exist")


@dataclass(frozen=True)
class DatasetRef:
    """A dataset a run read, known by its content digest and where it lives (a path or URI), not its rows."""

    name: str
    digest: str
    source: str


def log_datasets(
    cfg: TrackingConfig, run_id: str, datasets: Iterable[DatasetRef], context: str = "walk-forward"
) -> None:
    """``datasets`` as the run's dataset inputs (metadata only: name, digest, source), with ``context``."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    for ref in datasets:
        with warnings.catch_warnings():  # a local path resolves to a local source under two schemes
            warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
            source = resolve_dataset_source(ref.source)
        # MLflow's dataset "that only contains metadata"; its base class (no ABC) leaves ``profile`` abstract.
        meta = MetaDataset(source, name=ref.name, digest=ref.digest).to_dict()  # type: ignore[abstract]
        inputs.append(DatasetInput(Dataset(**meta), [InputTag(MLFLOW_DATASET_CONTEXT, context)]))
    if inputs:
        _client(cfg).log_inputs(run_id, datasets=inputs)


def log_run(
    cfg: TrackingConfig,
    *,
    run_name: str,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    step_metrics: Iterable[tuple[str, Any, int]] = (),
    tags: Mapping[str, Any] | None = None,
    artifacts: Mapping[str, Path] | None = None,
    datasets: Iterable[DatasetRef] = (),
    nested: bool = False,
    parent_run_id: str | None = None,
    started_at: float | None = None,
) -> str:
    """Log one whole run (e.g. one evaluation) in one call; returns the run id. ``started_at``: see
    :func:`start_run`."""
    opened = start_run(
        cfg, run_name=run_name, tags=tags, nested=nested, parent_run_id=parent_run_id, started_at=started_at
    )
    with opened as run_id:
        log_params(cfg, run_id, params or {})
        log_metrics(cfg, run_id, metrics, step_metrics)
        log_artifacts(cfg, run_id, artifacts or {})
        log_datasets(cfg, run_id, datasets)
    return run_id


def pip_requirements() -> list[str]:
    """``name==version`` of the installed :data:`REQUIREMENTS` (local labels like ``+cpu`` dropped)."""
    return [f"{name}=={metadata.version(name).split('+')[0]}" for name in REQUIREMENTS]


def register_bundle(
    cfg: TrackingConfig,
    bundle_dir: Path,
    *,
    model_name: str,
    run_id: str | None = None,
    alias: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    model_description: str | None = None,
) -> int:
    """Log the bundle folder as a pyfunc model (artifact ``bundle``), register it as a new version
    of ``model_name`` and optionally point ``alias`` at it; returns the version number.

    ``run_id``: the run the model belongs to (default: the active run, if any). The version is tagged
    with the bundle's model name, training window and stockml version, plus ``tags``, and described by
    ``description``; ``model_description`` describes the registered model when it has no description yet
    (it was just created).
    """
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    bundle_dir = Path(bundle_dir).resolve()
    meta = BundleMeta.from_json((bundle_dir / BUNDLE_FILE).read_text(encoding="utf-8"))
    configure(cfg)
    signature = ModelSignature(
        params=ParamSchema([ParamSpec("as_of", "string", None), ParamSpec("calibration", "string", "")])
    )
    active = mlflow.active_run()
    resume = run_id is not None and (active is None or active.info.run_id != run_id)
    with (
        mlflow.start_run(run_id=run_id, nested=active is not None) if resume else _nothing(),
        warnings.catch_warnings(),
    ):
        # No input example: a feature frame is too big and too private to store with the model.
        warnings.filterwarnings("ignore", message=".*input example was not provided", category=UserWarning)
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=_pyfunc_class()(),
            artifacts={"bundle": str(bundle_dir)},
            signature=signature,
            pip_requirements=pip_requirements(),
            registered_model_name=model_name,
        )
    version = info.registered_model_version
    if version is None:
        raise RuntimeError(f"MLflow did not register {model_name!r}")
    version_tags = {
        T.MODEL_NAME: meta.model_name,
        T.TRAIN_START: meta.train_start.isoformat(),
        T.TRAIN_END: meta.train_end.isoformat(),
        T.VERSION: meta.stockml_version,
        **(tags or {}),
    }
    set_version_tags(cfg, model_name, int(version), version_tags)
    if model_description:
        describe_model(cfg, model_name, model_description)
    if description:
        set_version_description(cfg, model_name, int(version), description)
    if alias is not None:
        set_alias(cfg, model_name, alias, int(version))
    return int(version)


def model_version_tags(cfg: TrackingConfig, model_name: str, version: int) -> dict[str, str]:
    return dict(_client(cfg).get_model_version(model_name, str(version)).tags)


def set_version_tags(cfg: TrackingConfig, model_name: str, version: int, tags: Mapping[str, Any]) -> None:
    client = _client(cfg)
    for key, value in tags.items():
        client.set_model_version_tag(model_name, str(version), key, str(value)[:MAX_TAG_LENGTH])


def describe_model(cfg: TrackingConfig, model_name: str, text: str, replace: bool = False) -> None:
    """The registered model's description; an existing one is kept unless ``replace``."""
    client = _client(cfg)
    if replace or not client.get_registered_model(model_name).description:
        client.update_registered_model(model_name, description=text[:MAX_DESCRIPTION_LENGTH])


def version_description(cfg: TrackingConfig, model_name: str, version: int) -> str:
    return _client(cfg).get_model_version(model_name, str(version)).description or ""


def set_version_description(cfg: TrackingConfig, model_name: str, version: int, text: str) -> None:
    """The version's description (Markdown in the UI), cut to the registry's limit."""
    _client(cfg).update_model_version(model_name, str(version), description=text[:MAX_DESCRIPTION_LENGTH])


def calibration_state(cfg: TrackingConfig, model_name: str, version: int) -> AciState | None:
    """The online calibration a version has learned since it was registered (its version tag); None
    when it has learned nothing yet (its bundle's own state applies)."""
    text = model_version_tags(cfg, model_name, version).get(T.CALIBRATION)
    return AciState.from_json(text) if text else None


def registered_version(cfg: TrackingConfig, model_uri: str) -> tuple[str, int] | None:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` -> (NAME, version); None for any other URI
    (a run's model, a path) or an alias that points nowhere."""
    if not model_uri.startswith("models:/"):
        return None
    path = model_uri.removeprefix("models:/")
    name, at, alias = path.partition("@")
    if at:
        version = get_alias_version(cfg, name, alias)
        return None if version is None else (name, version)
    name, _, number = path.rpartition("/")
    return (name, int(number)) if name and number.isdigit() else None


def served_calibration(cfg: TrackingConfig, model_uri: str) -> AciState | None:
    """What the registered version behind ``model_uri`` has learned since registration (None: nothing yet,
    or not a registered version; its bundle's own calibration then applies)."""
    found = registered_version(cfg, model_uri)
    return None if found is None else calibration_state(cfg, *found)


def set_calibration_state(cfg: TrackingConfig, model_name: str, version: int, state: AciState) -> None:
    text = state.to_json()
    if len(text) > MAX_TAG_LENGTH:
        raise ValueError(f"calibration state of {len(text)} characters exceeds a tag's {MAX_TAG_LENGTH}")
    _client(cfg).set_model_version_tag(model_name, str(version), T.CALIBRATION, text)


def set_alias(cfg: TrackingConfig, model_name: str, alias: str, version: int) -> None:
    _client(cfg).set_registered_model_alias(model_name, alias, str(version))


def get_alias_version(cfg: TrackingConfig, model_name: str, alias: str) -> int | None:
    """The version ``alias`` points at; None when the alias or the model does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        model = _client(cfg).get_registered_model(model_name)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = model.aliases.get(alias)
    return None if version is None else int(version)


def load_forecaster(cfg: TrackingConfig, model_uri: str) -> PyFuncModel:
    """The pyfunc model at ``model_uri`` (e.g. ``models:/NAME@champion``).

    ``.predict(frame, params={"as_of": "2024-05-31"})`` gives :meth:`Forecaster.predict`'s frame;
    ``.unwrap_python_model().forecaster`` is the :class:`~stockml.registry.bundle.Forecaster` itself.
    """
    import mlflow

    mlflow.set_tracking_uri(cfg.resolved_tracking_uri())
    return mlflow.pyfunc.load_model(model_uri)


def _client(cfg: TrackingConfig) -> Any:
    import mlflow

    return mlflow.MlflowClient(cfg.resolved_tracking_uri())


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@functools.cache
def _pyfunc_class() -> type:
    """``StockmlForecaster``, built on first use so that importing this module does not import mlflow.

    It is reachable as ``stockml.registry.tracking.StockmlForecaster`` (module ``__getattr__``), so pickles
    of it refer to this module instead of copying the class.
    """
    from mlflow.pyfunc import PythonModel

    class StockmlForecaster(PythonModel):
        """Pyfunc wrapper of a model bundle (artifact ``bundle``): ``predict`` is ``Forecaster.predict``.

        Params: ``as_of`` (ISO date); ``calibration``: empty for the bundle's own online calibration,
        ``"raw"`` for the model's quantiles as they are, or a state's JSON (:func:`calibration_state`).
        ``mlflow models serve`` answers the same over REST (dates then arrive as text, NaN as null; the
        body: :func:`stockml.serving.rest.request_body`); the served model cannot read its version's
        tags, so the request carries the learned calibration.
        """

        def load_context(self, context: Any) -> None:
            self.forecaster = load_bundle(context.artifacts["bundle"])

        # ``pd.DataFrame``: a type hint MLflow accepts without deriving an input schema from it.
        def predict(
            self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
        ) -> pd.DataFrame:
            as_of = (params or {}).get("as_of")
            calibration = (params or {}).get("calibration") or ""
            state = AciState.from_json(calibration) if calibration not in ("", RAW) else None
            return self.forecaster.predict(
                model_input, as_of=as_of or None, calibration=state, raw=calibration == RAW
            )

    StockmlForecaster.__module__ = __name__
    StockmlForecaster.__qualname__ = "StockmlForecaster"
    return StockmlForecaster


def __getattr__(name: str) -> Any:
    if name == "StockmlForecaster":
        return _pyfunc_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
