"""A registered model answers REST requests under ``mlflow models serve`` with the forecasts it gives in
process: the request body (:func:`request_body`), dates sent as text, NaN as null, params, and a real local
scoring server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_bundle import CODES, QCOLS, T, feature_frame, saved_bundle
from test_tracking import cfg  # noqa: F401  (fixture: a fresh store under tmp_path)

from stockml.evaluation.calibration import AciState
from stockml.registry.bundle import load_bundle
from stockml.registry.tracking import TrackingConfig, load_forecaster, register_bundle
from stockml.serving.rest import request_body

LEVELS = tuple(float(c.removeprefix("q")) for c in QCOLS)
H = 3
DAY = pd.bdate_range("2021-01-04", periods=120)[-10].date()  # every symbol of feature_frame() trades then


def _frame() -> pd.DataFrame:
    """The test feature frame with a raw close, missing for one symbol at DAY."""
    frame = feature_frame()
    close = np.random.default_rng(1).uniform(5, 50, len(frame))
    hole = (frame["ts_code"] == CODES[1]) & (frame["trade_date"] == pd.Timestamp(DAY))
    return frame.assign(close=np.where(hole, np.nan, close))


def _state(scale: float) -> AciState:
    phi = tuple(tuple(scale * h * (q != 0.5) for q in LEVELS) for h in range(1, H + 1))
    return AciState(LEVELS, 0.01, phi, ("2021-06-01",) * H)


def _as_served(body: dict) -> pd.DataFrame:
    """The frame the scoring server hands to predict: strict JSON, then pandas' ``split`` constructor."""
    split = json.loads(json.dumps(body, allow_nan=False))["dataframe_split"]
    return pd.DataFrame(columns=split["columns"], data=split["data"])


def test_the_request_carries_each_window_and_gives_the_same_forecast(tmp_path: Path) -> None:
    frame = _frame()
    forecaster = load_bundle(saved_bundle(tmp_path, frame))
    body = request_body(forecaster, frame, DAY, "raw")
    assert body["params"] == {"as_of": DAY.isoformat(), "calibration": "raw"}
    sent = _as_served(body)
    assert list(sent.columns) == ["ts_code", "trade_date", "sector_id", *forecaster.feature_columns, "close"]
    assert sent.groupby("ts_code").size().to_dict() == dict.fromkeys(CODES, T)  # each symbol's last T rows
    assert sent["trade_date"].max() == DAY.isoformat() and sent["close"].isna().sum() == 1
    expected = forecaster.predict(frame, as_of=DAY, raw=True)
    pd.testing.assert_frame_equal(forecaster.predict(sent, as_of=DAY, raw=True), expected)


@pytest.mark.parametrize("text", ["%Y-%m-%d", "%Y%m%d", "%Y-%m-%dT%H:%M:%S.000Z"])
def test_dates_sent_as_text_are_read_as_trading_days(tmp_path: Path, text: str) -> None:
    frame = _frame()
    forecaster = load_bundle(saved_bundle(tmp_path, frame))
    as_text = frame.assign(trade_date=frame["trade_date"].dt.strftime(text))
    pd.testing.assert_frame_equal(
        forecaster.predict(as_text, as_of=DAY), forecaster.predict(frame, as_of=DAY)
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body, allow_nan=False).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())  # missing prices come back as NaN (MLflow's encoder)
    except urllib.error.HTTPError as err:
        pytest.fail(f"{err.code}: {err.read().decode()[-3000:]}")


def _wait_for_ping(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"mlflow models serve exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        with suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"no answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """The server's process group (mlflow and its uvicorn): SIGTERM, then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)


@pytest.mark.slow
def test_the_registered_model_answers_rest_requests_as_in_process(
    cfg: TrackingConfig,  # noqa: F811
    tmp_path: Path,
) -> None:
    frame = _frame()
    register_bundle(cfg, saved_bundle(tmp_path, frame, calibration=_state(0.1)), model_name="demo")
    model = load_forecaster(cfg, "models:/demo/1")
    forecaster = model.unwrap_python_model().forecaster

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLFLOW_TRACKING_URI=cfg.resolved_tracking_uri(),
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # mlflow execs `uvicorn`
    )
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/demo/1"]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for_ping(f"http://127.0.0.1:{port}/ping", proc, log)
        answers = {}
        for calibration in ("", "raw", _state(0.3).to_json()):  # bundled, none, one sent along
            body = request_body(forecaster, frame, DAY, calibration)
            got = pd.DataFrame(_post(f"http://127.0.0.1:{port}/invocations", body)["predictions"])
            expected = model.predict(frame, params={"as_of": DAY.isoformat(), "calibration": calibration})
            assert list(got.columns) == list(expected.columns)
            assert got["as_of"].tolist() == [d.isoformat() for d in expected["as_of"]] and len(got) == 3 * H
            assert got["ts_code"].tolist() == expected["ts_code"].tolist()
            assert got["horizon"].tolist() == expected["horizon"].tolist()
            numbers = [c for c in expected.columns if c not in ("ts_code", "as_of", "horizon")]
            np.testing.assert_allclose(
                got[numbers].to_numpy(float), expected[numbers].to_numpy(float), rtol=0, atol=1e-9
            )
            assert got["last_close"].isna().sum() == H  # the close missing at as_of: null in, NaN out
            answers[calibration or "bundled"] = got[QCOLS].to_numpy(float)
        assert not np.allclose(answers["bundled"], answers["raw"])  # the params reached predict
    finally:
        _stop(proc)
    assert proc.poll() is not None
