"""Fixtures for the Python client tests: a real `conclave serve` on a free loopback port.

The server runs the embedded provider (a supervised llama-server with SmolLM2 from .venv), keeps
its SQLite store in a temp dir and ingests the Meridian example documents on start.
Set CONCLAVE_BIN to test a binary other than `.build/debug/conclave`.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONCLAVE_BIN = os.environ.get("CONCLAVE_BIN") or str(REPO_ROOT / ".build" / "debug" / "conclave")
READY_TIMEOUT_S = 180
SHUTDOWN_TIMEOUT_S = 30


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log_path: Path
    token: str = ""
    env: dict | None = None
    scheme: str = "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as error:
            return f"(no server log: {error})"
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready_status(url: str) -> int | None:
    # Readiness only: an HTTPS test server's certificate is checked by the tests themselves.
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


@pytest.fixture(scope="session")
def meridian_api():
    """The Meridian Fleet & Tracking API fixture server on a free loopback port."""
    port = _free_port()
    process = subprocess.Popen(
        ["python3", str(REPO_ROOT / "examples" / "meridian" / "api" / "serve.py"), "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while _ready_status(f"{url}/healthz") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Meridian API fixture server did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


ARTEFACTS = REPO_ROOT / "var" / "test-artefacts"


@pytest.fixture(scope="session")
def secrets_used() -> set[str]:
    """Every secret this session's servers were given (signing keys, tokens, upstream API tokens):
    test_zz_secrets.py checks that no log of the run contains any of them."""
    found = {"fleet-demo-token"}  # the Meridian API fixture's token (MERIDIAN_API_TOKEN)
    for name in ("dev-hs256.key", "audit-ed25519.key"):
        key = REPO_ROOT / "var" / name
        if key.exists():
            found.add(key.read_text().strip())
    return found


@pytest.fixture(scope="module")
def server(request, meridian_api: str, secrets_used: set[str]):
    """A test module may set `SERVER_ENV` (a dict of CONCLAVE_* overrides) for its own server."""
    if not os.access(CONCLAVE_BIN, os.X_OK):
        pytest.fail(f"conclave binary not found or not executable: {CONCLAVE_BIN} (build it or set CONCLAVE_BIN)")
    with tempfile.TemporaryDirectory(prefix="conclave-pytest-") as tmp:
        tmp_path = Path(tmp)
        port = _free_port()
        env = dict(os.environ)
        env["CONCLAVE_STORAGE__PATH"] = str(tmp_path / "conclave.sqlite")
        env["CONCLAVE_KNOWLEDGE__INGEST_ON_START"] = f"[{REPO_ROOT / 'examples' / 'meridian' / 'docs'}]"
        # Authentication stays on (the default); the key is a fresh one for this server.
        key = tmp_path / "hs256.key"
        key.write_text(os.urandom(32).hex())
        key.chmod(0o600)
        secrets_used.add(key.read_text())
        env["CONCLAVE_AUTH__HS256_KEY_FILE"] = str(key)
        # The internal API connector calls the fixture server with its demo token.
        env["CONCLAVE_KNOWLEDGE__API_BASE_URL"] = meridian_api
        env["MERIDIAN_API_TOKEN"] = "fleet-demo-token"
        env.update(getattr(request.module, "SERVER_ENV", {}))
        log_path = tmp_path / "server.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [CONCLAVE_BIN, "serve", "--port", str(port)],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        token = subprocess.run(
            [CONCLAVE_BIN, "token", "--user", "u-employee"], cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        secrets_used.add(token)
        scheme = "https" if env.get("CONCLAVE_SERVER__TLS_CERT_FILE") else "http"
        srv = Server(port=port, process=process, log_path=log_path, token=token, env=env, scheme=scheme)
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            last_status = None
            while True:
                if process.poll() is not None:
                    pytest.fail(
                        f"conclave serve exited with {process.returncode} before becoming ready; log tail:\n"
                        + srv.log_tail()
                    )
                last_status = _ready_status(f"{srv.base_url}/readyz")
                if last_status == 200:
                    break
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"GET /readyz did not return 200 within {READY_TIMEOUT_S}s (last status: {last_status}); "
                        "log tail:\n" + srv.log_tail()
                    )
                time.sleep(0.5)

            yield srv

            # Graceful shutdown: SIGTERM drains and exits 0.
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail(f"conclave serve did not exit within {SHUTDOWN_TIMEOUT_S}s of SIGTERM; log tail:\n"
                            + srv.log_tail())
            assert code == 0, f"conclave serve exited with {code} after SIGTERM; log tail:\n{srv.log_tail()}"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            # Keep the log with the run's artefacts (test_zz_secrets.py greps it).
            logs = ARTEFACTS / "server-logs"
            logs.mkdir(parents=True, exist_ok=True)
            if log_path.exists():
                (logs / f"{request.module.__name__}-{port}.log").write_bytes(log_path.read_bytes())


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.token, max_retries=0, timeout=300)
