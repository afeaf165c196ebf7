"""Live reconfiguration under load (docs/operations.md): a bounded request loop runs while the
workflow file is changed twice (once by SIGHUP, once by `conclave reload`) and an invalid file
is written once. No request fails, each answer names the configuration version it ran on, the
invalid file leaves the running version in place with an error naming it, and a changed access
policy applies to the requests that start after the reload."""

import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import CONCLAVE_BIN, REPO_ROOT

WORKDIR = Path(tempfile.mkdtemp(prefix="conclave-reload-"))
WORKFLOWS = WORKDIR / "workflows"
WORKFLOWS.mkdir()
POLICY = WORKDIR / "policy.yaml"
shutil.copy(REPO_ROOT / "config" / "policies" / "meridian.yaml", POLICY)
WORKFLOW_FILE = WORKFLOWS / "reload-demo.yaml"
MODEL = "conclave/reload-demo"
SERVER_ENV = {
    "CONCLAVE_WORKFLOWS__DIRECTORY": str(WORKFLOWS),
    "CONCLAVE_GOVERNANCE__POLICY_FILE": str(POLICY),
}


def _workflow(timeout: int) -> str:
    return (
        "name: reload-demo\n"
        f"description: One responder call (step timeout {timeout} s).\n"
        "steps:\n"
        "  - id: respond\n"
        "    role: responder\n"
        f"    timeout_seconds: {timeout}\n"
    )


WORKFLOW_FILE.write_text(_workflow(120))


def _post(server, path: str, token: str, body: dict | None = None) -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(f"{server.base_url}{path}", data=data, method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def _ask(server, token: str) -> tuple[int, int | None, int | None]:
    """One chat request: status, the answer's config_version and the header's."""
    status, headers, body = _post(server, "/v1/chat/completions", token, {
        "model": MODEL, "max_tokens": 24, "temperature": 0, "seed": 7,
        "messages": [{"role": "user", "content": "How many vacation days do employees get?"}],
    })
    header = headers.get("X-Conclave-Config-Version") or headers.get("x-conclave-config-version")
    return status, (body.get("conclave") or {}).get("config_version"), int(header) if header else None


def _admin_token(server) -> str:
    return subprocess.run([CONCLAVE_BIN, "token", "--user", "u-admin"], cwd=REPO_ROOT, env=server.env, check=True,
                          capture_output=True, text=True).stdout.strip()


def _reload_cli(server) -> subprocess.CompletedProcess:
    return subprocess.run([CONCLAVE_BIN, "reload", "--url", server.base_url, "--user", "u-admin"], cwd=REPO_ROOT,
                          env=server.env, capture_output=True, text=True, timeout=120)


def _wait_for_version(server, token: str, version: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, body = _post(server, "/admin/reload", token)
        # A reload with unchanged files reports the version in force without changing it.
        if status == 200 and body["version"]["version"] >= version:
            return
        time.sleep(0.5)
    raise AssertionError(f"version {version} not reached; log:\n{server.log_tail()}")


def test_reload_under_load_loses_no_request_and_each_answer_names_its_version(server) -> None:
    admin = _admin_token(server)
    results: list[tuple[int, int | None, int | None]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set() and len(results) < 60:
            results.append(_ask(server, server.token))

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        while not results:
            time.sleep(0.2)
        # 1. The workflow file changes; SIGHUP reloads it.
        WORKFLOW_FILE.write_text(_workflow(90))
        server.process.send_signal(signal.SIGHUP)
        _wait_for_version(server, admin, 2)
        seen = len(results)
        while len(results) < seen + 1:
            time.sleep(0.2)
        # 2. It changes again; `conclave reload` reloads it and prints the new version.
        WORKFLOW_FILE.write_text(_workflow(60))
        done = _reload_cli(server)
        assert done.returncode == 0, done.stderr
        outcome = json.loads(done.stdout)
        assert outcome["changed"] is True and outcome["version"]["version"] == 3, outcome
        assert str(WORKFLOW_FILE) in outcome["files"] and str(POLICY) in outcome["files"]
        seen = len(results)
        while len(results) < seen + 1:
            time.sleep(0.2)
        # 3. An invalid file (a dependency on a step that does not exist): refused, named, nothing changes.
        WORKFLOW_FILE.write_text(_workflow(60) + "    depends_on: [nowhere]\n")
        refused = _reload_cli(server)
        assert refused.returncode == 1
        assert "workflows.directory" in refused.stderr and "nowhere" in refused.stderr, refused.stderr
        status, _, body = _post(server, "/admin/reload", admin)
        assert status == 400 and body["error"]["param"] == "workflows.directory", body
        seen = len(results)
        while len(results) < seen + 2:
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(timeout=600)
    assert all(status == 200 for status, _, _ in results), f"{results}\n{server.log_tail()}"
    versions = [version for _, version, _ in results]
    assert all(header == version for _, version, header in results), results
    # Versions only go up, every answer names one, and the invalid file never became one.
    assert versions == sorted(versions) and set(versions) <= {1, 2, 3}, versions
    assert versions[0] == 1 and versions[-1] == 3, versions

    # Only admins may reload.
    status, _, body = _post(server, "/admin/reload", server.token)
    assert status == 403, body

    # The access policy is reloaded too: once it reserves the workflow for HR, the employee is refused.
    WORKFLOW_FILE.write_text(_workflow(60))
    policy = POLICY.read_text().replace('workflows:\n  "*": ["*"]', 'workflows:\n  "*": ["*"]\n  reload-demo: [hr]')
    assert "reload-demo: [hr]" in policy
    POLICY.write_text(policy)
    done = _reload_cli(server)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"]["version"] == 4
    status, _, body = _post(server, "/v1/chat/completions", server.token,
                            {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hello"}]})
    assert status == 403, body
