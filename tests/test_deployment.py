"""The deployments in ``prefect.yaml``, run the way a user runs them, against a real Prefect server.

Server on 127.0.0.1 -> ``prefect work-pool create stockml-pool --type process`` -> ``prefect deploy --all``
from the repository root -> ``prefect worker start`` (from another folder, so the flow only loads if the
deployment points the run at the checkout) -> ``prefect deployment run 'daily-retrain/daily-retrain'
--watch`` on a small demo market -> the run completed, MLflow holds the daily run and an ``@champion``
whose registered pyfunc carries the bundle, and the forecast is in the lake. Measured on a 2-core
machine: about 60 s (server start about 15 s, the flow run about 35 s).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd
import psutil  # installed with prefect-dask (distributed)
import pytest

REPO = Path(__file__).resolve().parents[1]
PREFECT = Path(sys.executable).parent / "prefect"
POOL = "stockml-pool"
AS_OF = "2023-12-29"
BUDGET_S = 330  # every wait below shares this deadline, so a hang fails the test in under 6 minutes


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, cap: float) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            pytest.fail(f"the deployment test ran past its {BUDGET_S} s budget")
        return min(cap, left)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp_path: Path, api_url: str) -> dict[str, str]:
    """The test process's environment (see conftest.py) with this test's Prefect, MLflow and demo settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(tmp_path / "prefect" / "results"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # Runs come from `deployment run` only: a scheduled daily run must not start mid-test.
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
        DO_NOT_TRACK="true",
        MLFLOW_DISABLE_TELEMETRY="true",
        STOCKML_CONFIG=str(REPO / "tests" / "stockml-test.yaml"),  # 8 demo symbols
        STOCKML_DEMO__START="2021-06-01",  # history_days=730 before as_of
        STOCKML_DEMO__SIGNAL_STRENGTH="1.0",  # the daily flow test's market
    )
    return env


@contextmanager
def _background(args: list[str], log: Path, cwd: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A long-running CLI in its own process group; on exit the group and every descendant are stopped."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(PREFECT), *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    # A flow run's process has its own session, so the group kill alone would miss it.
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
    for child in children:
        with suppress(psutil.NoSuchProcess):
            child.kill()


def _cli(args: list[str], env: dict[str, str], timeout: float, cwd: Path = REPO) -> str:
    try:
        done = subprocess.run(
            [str(PREFECT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        partial = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
        pytest.fail(f"prefect {' '.join(args)} ran past {timeout:.0f} s:\n{partial}")
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"prefect {' '.join(args)} exited {done.returncode}:\n{output}")
    return output


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.poll() is not None:
            pytest.fail(f"prefect server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no healthy Prefect server at {url} within {timeout:.0f} s")


def _print_logs(*logs: Path) -> None:
    for log in logs:
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        print(f"\n===== {log.name} (last 8000 characters) =====\n{text[-8000:]}")


def _deployments_and_runs(api_url: str) -> tuple[dict, list]:
    """Both deployments and the daily deployment's flow runs, from the server through the Python client."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        deployments = {
            name: client.read_deployment_by_name(f"{name}/{name}") for name in ("daily-retrain", "backfill")
        }
        daily = DeploymentFilter(id=DeploymentFilterId(any_=[deployments["daily-retrain"].id]))
        return deployments, client.read_flow_runs(deployment_filter=daily)


@pytest.mark.slow
def test_daily_retrain_deployment_on_a_local_server(tmp_path: Path) -> None:
    deadline = Deadline(BUDGET_S)
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = _env(tmp_path, api_url)
    logs = tmp_path / "server.log", tmp_path / "worker.log"
    worker_cwd = tmp_path / "elsewhere"
    worker_cwd.mkdir()
    params = {
        "as_of": AS_OF,
        "data_dir": str(tmp_path / "lake"),
        "mlruns_dir": str(tmp_path / "mlruns"),
        "models": ["lstm", "tcn"],  # the better one is the challenger
        "max_epochs": 3,
        "coverage_band": [0.0, 1.0],
    }
    try:
        server_args = ["server", "start", "--host", "127.0.0.1", "--port", str(port)]
        with _background(server_args, logs[0], tmp_path, env) as server:
            _wait_healthy(api_url, server, deadline.left(120))
            _cli(["work-pool", "create", POOL, "--type", "process"], env, deadline.left(60))
            # A shell sets PWD to the folder it is in; prefect.yaml reads it as the runs' working_dir.
            _cli(["--no-prompt", "deploy", "--all"], {**env, "PWD": str(REPO)}, deadline.left(120))
            with _background(["worker", "start", "--pool", POOL], logs[1], worker_cwd, env):
                run = ["deployment", "run", "daily-retrain/daily-retrain", "--watch", "--params"]
                output = _cli([*run, json.dumps(params)], env, deadline.left(300))
            deployments, flow_runs = _deployments_and_runs(api_url)
        _check_deployments(deployments)
        assert len(flow_runs) == 1, flow_runs
        assert flow_runs[0].state is not None and flow_runs[0].state.is_completed(), output
        assert flow_runs[0].parameters["as_of"] == AS_OF
        _check_mlflow(tmp_path / "mlruns")
        preds = pd.read_parquet(tmp_path / "lake" / "predictions" / "daily" / f"{AS_OF}.parquet")
        assert preds["ts_code"].nunique() == 8 and set(preds["horizon"]) == {1, 2, 3, 4, 5}
        assert set(preds["model_uri"]) == {"models:/stockml@champion"}
    except BaseException:
        _print_logs(*logs)
        raise


def _check_deployments(deployments: dict) -> None:
    daily, backfill = deployments["daily-retrain"], deployments["backfill"]
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in daily.schedules] == [
        ("30 17 * * 1-5", "Asia/Shanghai", True)
    ]
    assert daily.work_pool_name == backfill.work_pool_name == POOL
    assert daily.job_variables["working_dir"] == backfill.job_variables["working_dir"] == str(REPO)
    assert daily.parameters == {"models": ["lstm", "tcn"], "refit": False}
    assert backfill.schedules == [] and backfill.entrypoint == "flows/backfill.py:backfill"


def _check_mlflow(root: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, "tags.kind = 'daily'")
    assert [(r.info.run_name, r.info.status, r.data.tags["as_of"]) for r in runs] == [
        (f"daily-{AS_OF}", "FINISHED", AS_OF)
    ]
    versions = client.search_model_versions("name = 'stockml'")
    reasons = {
        f"v{v.version} {v.tags.get('stockml.model_name')}": v.tags.get("stockml.promotion_reasons")
        for v in versions
    }
    print("promotion reasons by version:", reasons)
    champion = client.get_model_version_by_alias("stockml", "champion")
    assert champion.tags["stockml.promotion"] == "promoted", reasons
    # as in the daily flow test: the challenger has no evidence over the best baseline, so the volatility
    # baseline is the first champion
    assert champion.tags["stockml.model_name"] == "unconditional", reasons
    assert champion.tags["stockml.run_id"] == runs[0].info.run_id

    # models:/stockml@champion, resolved without touching MLflow's process-wide tracking URI
    source = client.get_model_version_download_uri("stockml", champion.version)
    local = mlflow.artifacts.download_artifacts(source, dst_path=str(root / "download"), tracking_uri=uri)
    norm = json.loads((Path(local) / "artifacts" / "bundle" / "norm_params.json").read_text())
    # the registered pyfunc carries the bundle whose normaliser was fitted on the champion's training window
    assert (norm["fit_start"], norm["fit_end"]) == (
        champion.tags["stockml.train_start"],
        champion.tags["stockml.train_end"],
    )
    assert "sentiment" in norm["features"]
