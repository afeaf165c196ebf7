"""Chaos under load, bounded and on loopback only (issue 10):

1. A gateway with two local llama-server replicas serves a closed-loop load while one replica
   is SIGKILLed every 10 s (`conclave bench load --kill-replica-every`). Non-streaming requests
   to the full workflow: every one is answered. Streams straight from the model (the direct
   route, whose tokens are relayed as they come, so a kill lands mid-stream): every started
   stream ends with `[DONE]` or with an error event, never just stops.
2. A gateway is SIGKILLed while clients hold conversations with it. After a restart on the same
   store, every turn a client saw completed is stored, every completed request has its audit
   record, and `conclave audit verify` passes.

`CONCLAVE_CHAOS_SECONDS` sets each load phase's length (30 s here, so a minute of kills in
`make test`; `make chaos` runs 90 s each, three minutes). Each phase's numbers are kept as JSON
under var/test-artefacts/ (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ARTEFACTS, CONCLAVE_BIN, REPO_ROOT, _free_port, _ready_status

SECONDS = int(os.environ.get("CONCLAVE_CHAOS_SECONDS", "30"))
# Closed-loop users of the non-streaming phase. Two replicas on two cores run one thread each; at
# four users a `conclave/full` request takes 18-36 s and each of its model calls 6-12 s, as long
# as the kill interval, so the injector (which kills the busiest replica, where the retries went)
# can catch a call on every attempt: the test would measure overload, not failover. Two users keep
# a call well inside the interval (docs/reliability.md). The streaming phase's calls are short.
USERS = int(os.environ.get("CONCLAVE_CHAOS_USERS", "2"))
SERVER_ENV = {"CONCLAVE_INFERENCE__REPLICAS": "2"}


def _token(server, user: str) -> str:
    return subprocess.run([CONCLAVE_BIN, "token", "--user", user], cwd=REPO_ROOT, env=server.env, check=True,
                          capture_output=True, text=True).stdout.strip()


def _load(server, name: str, model: str, stream: bool, users: int) -> dict:
    output = ARTEFACTS / f"chaos-{name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [CONCLAVE_BIN, "bench", "load", "--url", server.base_url, "--token", _token(server, "u-admin"),
               "--model", model, "--users", str(users), "--duration", str(SECONDS), "--kill-replica-every", "10",
               "--max-tokens", "48", "--output", str(output)] + (["--stream"] if stream else [])
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=SECONDS + 400)
    assert result.returncode == 0, result.stderr[-3000:]
    level = json.loads(output.read_text())["levels"][0]
    assert level["replicas_killed"] >= SECONDS // 10 - 1, level
    assert level["sent"] >= 4, level
    return level


def test_killing_a_replica_every_10_s_loses_no_non_streaming_request(server) -> None:
    level = _load(server, "non-streaming", "conclave/full", stream=False, users=USERS)
    assert level["errors"] == 0 and level["availability"] == 1, f"{level}\n{server.log_tail()}"


def test_killing_a_replica_every_10_s_never_cuts_a_stream_silently(server) -> None:
    level = _load(server, "streaming", "smollm2", stream=True, users=4)
    assert level["streams_cut"] == 0, f"{level}\n{server.log_tail()}"
    # Every failure was a stream that said so (no refused request either).
    assert level["errors"] == level["streams_ended_with_error"], level


class _Gateway:
    """A `conclave serve` of this test's own, on a store that outlives it."""

    def __init__(self, directory: Path, meridian_api: str) -> None:
        self.directory = directory
        self.env = dict(os.environ)
        self.env.update({
            "CONCLAVE_STORAGE__PATH": str(directory / "conclave.sqlite"),
            "CONCLAVE_AUTH__HS256_KEY_FILE": str(directory / "hs256.key"),
            "CONCLAVE_AUDIT__SIGNING_KEY_FILE": str(directory / "audit.key"),
            "CONCLAVE_KNOWLEDGE__INGEST_ON_START": f"[{REPO_ROOT / 'examples' / 'meridian' / 'docs'}]",
            "CONCLAVE_KNOWLEDGE__API_BASE_URL": meridian_api,
            "MERIDIAN_API_TOKEN": "fleet-demo-token",
        })
        (directory / "hs256.key").write_text(os.urandom(32).hex())
        (directory / "hs256.key").chmod(0o600)
        self.process: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> None:
        self.port = _free_port()
        log = open(self.directory / f"serve-{self.port}.log", "wb")
        self.process = subprocess.Popen([CONCLAVE_BIN, "serve", "--port", str(self.port)], cwd=REPO_ROOT, env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while _ready_status(f"http://127.0.0.1:{self.port}/readyz") != 200:
            assert self.process.poll() is None, (self.directory / f"serve-{self.port}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the gateway did not become ready"
            time.sleep(0.3)

    def stop(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=60)
        logs = ARTEFACTS / "server-logs"
        logs.mkdir(parents=True, exist_ok=True)
        for path in self.directory.glob("serve-*.log"):
            (logs / f"test_chaos-{path.name}").write_bytes(path.read_bytes())

    def token(self, user: str) -> str:
        return subprocess.run([CONCLAVE_BIN, "token", "--user", user], cwd=REPO_ROOT, env=self.env, check=True,
                              capture_output=True, text=True).stdout.strip()


def _children(parent: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), 0)
        if ppid == parent and name in command:
            found.append(int(entry.name))
    return found


def _state(pid: int) -> str:
    try:
        return next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:")).lower()
    except (OSError, StopIteration):
        return ""


def _ask(port: int, token: str, question: str, conversation: str | None) -> tuple[int, dict]:
    body = {"model": "conclave/single", "max_tokens": 24, "temperature": 0, "seed": 7,
            "messages": [{"role": "user", "content": question}]}
    if conversation:
        body["metadata"] = {"conversation_id": conversation}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}
    except (urllib.error.URLError, OSError, ValueError):
        return 0, {}  # the gateway died under the request


def test_sigkill_of_the_gateway_loses_no_completed_turn_and_the_audit_chain_verifies(meridian_api: str) -> None:
    questions = ["How many days of annual leave do I get?", "And how many can I carry over?",
                 "What is the travel policy for flights?", "Who approves expenses?"]
    with tempfile.TemporaryDirectory(prefix="conclave-chaos-") as tmp:
        gateway = _Gateway(Path(tmp), meridian_api)
        gateway.start()
        token = gateway.token("u-employee")
        completed: list[tuple[str, str, str]] = []  # (conversation, question, answer) the clients saw
        refused: list[int] = []  # statuses other than 200 before the kill
        lock = threading.Lock()
        stop = threading.Event()

        def client(index: int) -> None:
            conversation = None
            turn = index
            while not stop.is_set():
                question = f"{questions[turn % len(questions)]} (client {index}, turn {turn})"
                status, body = _ask(gateway.port, token, question, conversation)
                if status == 0:
                    return  # the gateway is gone
                if status != 200:
                    # A busy model (the machine is shared) is not what this test is about: ask again.
                    with lock:
                        refused.append(status)
                    time.sleep(0.5)
                    continue
                conversation = body["conversation_id"]
                with lock:
                    completed.append((conversation, question, body["choices"][0]["message"]["content"]))
                turn += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 240
        while len(completed) < 8 and time.monotonic() < deadline:
            time.sleep(0.2)
        # Mid-write: requests are in flight on every client.
        replicas = _children(gateway.process.pid, "llama-server")
        assert replicas, "the gateway supervises no llama-server"
        gateway.stop(signal.SIGKILL)
        # Its llama-server replicas die with it (parent-death signal), not orphaned.
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in replicas) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = [pid for pid in replicas if Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)]
        assert not survivors, f"llama-server replicas {survivors} outlived their SIGKILLed gateway"
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
        assert len(completed) >= 8, f"only {len(completed)} turns completed before the kill (other answers: {refused[:20]})"

        # Restart on the same store: the database recovers, and it serves again.
        gateway.start()
        database = sqlite3.connect(Path(tmp) / "conclave.sqlite")
        missing = []
        for conversation, question, answer in completed:
            rows = database.execute("SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY id",
                                    (conversation,)).fetchall()
            if ("user", question) not in rows or ("assistant", answer) not in rows:
                missing.append((conversation, question))
        assert not missing, f"{len(missing)} of {len(completed)} completed turns are missing: {missing[:3]}"
        audited = database.execute("SELECT COUNT(*) FROM audit_log WHERE type = 'request'").fetchone()[0]
        database.close()
        assert audited >= len(completed), f"{audited} request audit records for {len(completed)} completed requests"
        status, _ = _ask(gateway.port, token, questions[0], None)
        assert status == 200
        gateway.stop(signal.SIGTERM)
        verify = subprocess.run([CONCLAVE_BIN, "audit", "verify"], cwd=REPO_ROOT, env=gateway.env, capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "valid" in verify.stdout
