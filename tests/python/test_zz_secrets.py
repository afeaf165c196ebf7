"""Secrets never reach a log. Runs last (file name): it greps every log this test run kept under
var/test-artefacts/ (the Swift unit and integration tests' output, written by scripts/test.sh,
and each pytest server's log, kept by conftest.py) for every secret the run used: the signing
keys, the tokens minted for the servers, and the Meridian API token the internal-API connector
sends upstream. Also: `conclave config check` warns about key files other users can read, and
this module's server logs JSON lines (`logging.format: json`) that carry the request's ids and
never the personal data a user typed."""

from __future__ import annotations

import os
import subprocess
import urllib.error
from pathlib import Path

import json
import urllib.request

from conftest import ARTEFACTS, CONCLAVE_BIN, REPO_ROOT

SERVER_ENV = {"CONCLAVE_LOGGING__FORMAT": "json", "CONCLAVE_LOGGING__MODULES": "{ConclaveServer: debug}"}


def test_no_log_of_the_run_contains_a_secret(server, secrets_used: set[str]) -> None:
    # This module's own server runs too, so there is always at least one fresh log and its key.
    assert server.token in secrets_used
    logs = [path for path in ARTEFACTS.rglob("*") if path.is_file() and path.suffix in (".log", ".txt")]
    assert logs, f"no logs under {ARTEFACTS}"
    secrets = {secret for secret in secrets_used if len(secret) >= 12}
    assert len(secrets) >= 3
    leaks = []
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in secrets:
            if secret in text:
                leaks.append(f"{path.relative_to(REPO_ROOT)} contains a secret starting {secret[:4]}…")
    assert not leaks, "\n".join(leaks)


def test_config_check_warns_about_key_files_other_users_can_read(tmp_path: Path) -> None:
    key = tmp_path / "hs256.key"
    key.write_text(os.urandom(32).hex())
    config = tmp_path / "conclave.yaml"
    config.write_text(f"auth:\n  hs256_key_file: {key}\naudit:\n  signing_key_file: {tmp_path / 'audit.key'}\n")
    for mode, warned in ((0o644, True), (0o600, False)):
        key.chmod(mode)
        result = subprocess.run([CONCLAVE_BIN, "config", "check", str(config)], cwd=REPO_ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert ("auth.hs256_key_file" in result.stderr and "chmod 600" in result.stderr) == warned, result.stderr
        assert key.read_text() not in result.stdout + result.stderr


def test_json_logs_carry_request_ids_and_no_personal_data(server) -> None:
    phone = "+44 7700 900123"
    body = {"model": "conclave/single", "max_tokens": 16,
            "messages": [{"role": "user", "content": f"My phone is {phone}. How many days of annual leave do I get?"}]}
    request = urllib.request.Request(f"{server.base_url}/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        conversation = json.loads(response.read())["conversation_id"]
    # A request that fails logs too (debug, enabled for ConclaveServer only).
    bad = urllib.request.Request(f"{server.base_url}/v1/chat/completions", data=b"{", headers={"Authorization": f"Bearer {server.token}"})
    try:
        urllib.request.urlopen(bad, timeout=30)
    except urllib.error.HTTPError as error:
        assert error.code == 400
    lines = [line for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    assert lines, server.log_tail()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "module", "label", "message"} <= record.keys(), record
    assert any(r.get("request_id") for r in records), "no line carries a request id"
    chat = [r for r in records if r.get("conversation_id") == conversation]
    assert chat and all(r.get("user") == "u-employee" and r.get("request_id") and r.get("run_id") for r in chat), chat
    assert any(r["level"] == "debug" and r["module"] == "ConclaveServer" for r in records), "module level not applied"
    assert not any(r["level"] == "debug" and r["module"] != "ConclaveServer" for r in records)
    text = server.log_path.read_text()
    assert phone not in text and "900123" not in text
