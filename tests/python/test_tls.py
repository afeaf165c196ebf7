"""TLS on the gateway (`server.tls_cert_file`, `server.tls_key_file`): the official OpenAI SDK
talks to it over HTTPS with a test CA; without the CA it refuses the certificate; plain HTTP to
the TLS port is refused cleanly and the server keeps serving; a bad certificate path stops
`conclave serve` and `conclave config check` with the key named; a renewed certificate is picked
up by a reload (SIGHUP) for new connections, and a key that does not match is refused."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import urllib.request
import openai
import pytest
from conftest import CONCLAVE_BIN, REPO_ROOT

# A test CA and a server certificate for 127.0.0.1, made once when the module loads (the
# module's server reads them at start).
_DIRECTORY = Path(tempfile.mkdtemp(prefix="conclave-tls-"))
CA = _DIRECTORY / "ca.pem"
CERT = _DIRECTORY / "server.pem"
KEY = _DIRECTORY / "server.key"


def _openssl(*arguments: str) -> None:
    subprocess.run(["openssl", *arguments], check=True, capture_output=True, cwd=_DIRECTORY)


_openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=Conclave test CA")
_openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
(_DIRECTORY / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
_openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
         "-days", "2", "-extfile", "san.cnf")
KEY.chmod(0o600)

SERVER_ENV = {"CONCLAVE_SERVER__TLS_CERT_FILE": str(CERT), "CONCLAVE_SERVER__TLS_KEY_FILE": str(KEY)}


def test_the_openai_sdk_talks_to_the_gateway_over_https_with_the_test_ca(server) -> None:
    assert server.base_url.startswith("https://")
    # The SDK's own HTTP client, trusting the test CA.
    with openai.DefaultHttpxClient(verify=ssl.create_default_context(cafile=str(CA))) as http:
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.token, max_retries=0, timeout=120, http_client=http)
        assert any(model.id == "conclave/single" for model in client.models.list().data)
        answer = client.chat.completions.create(model="conclave/single", max_tokens=16, temperature=0, seed=7,
                                                messages=[{"role": "user", "content": "How many days of annual leave do I get?"}])
        assert answer.choices[0].message.content
        stream = client.chat.completions.create(model="smollm2", max_tokens=8, stream=True,
                                                messages=[{"role": "user", "content": "Say hello."}])
        assert any(chunk.choices and chunk.choices[0].delta.content for chunk in stream)


def test_a_client_without_the_ca_refuses_the_certificate(server) -> None:
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.token, max_retries=0, timeout=30)
    with pytest.raises(openai.APIConnectionError):
        client.models.list()


def test_plain_http_to_the_tls_port_is_refused_cleanly(server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    # No HTTP answer: a TLS alert at most, then the connection is closed.
    assert not data.startswith(b"HTTP/"), data[:100]
    context = ssl.create_default_context(cafile=str(CA))
    with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=10, context=context) as response:
        assert response.status == 200


def test_a_certificate_that_cannot_be_loaded_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "conclave.yaml"
    config.write_text(f"server:\n  tls_cert_file: {tmp_path / 'missing.pem'}\n  tls_key_file: {KEY}\n")
    check = subprocess.run([CONCLAVE_BIN, "config", "check", str(config)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert check.returncode != 0 and "server.tls_cert_file" in check.stderr + check.stdout
    # A key that is not the certificate's.
    other = tmp_path / "other.key"
    subprocess.run(["openssl", "genrsa", "-out", str(other), "2048"], check=True, capture_output=True)
    config.write_text(f"server:\n  tls_cert_file: {CERT}\n  tls_key_file: {other}\n")
    env = dict(os.environ, CONCLAVE_STORAGE__PATH=str(tmp_path / "s.sqlite"))
    serve = subprocess.run([CONCLAVE_BIN, "serve", "--config", str(config), "--port", "0"], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert serve.returncode != 0 and "server.tls_key_file" in serve.stderr + serve.stdout, serve.stderr[-2000:]


def _presented_serial(server) -> str:
    context = ssl.create_default_context(cafile=str(CA))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert()["serialNumber"]


def test_a_reload_picks_up_a_renewed_certificate_for_new_connections(server) -> None:
    import signal
    import time

    before = _presented_serial(server)
    # Renew: a new key and certificate from the same CA, written over the configured files.
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "renewed.key", "-out", "renewed.csr", "-subj", "/CN=127.0.0.1")
    _openssl("x509", "-req", "-in", "renewed.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "renewed.pem",
             "-days", "2", "-extfile", "san.cnf")
    CERT.write_bytes((_DIRECTORY / "renewed.pem").read_bytes())
    KEY.write_bytes((_DIRECTORY / "renewed.key").read_bytes())
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while _presented_serial(server) == before:
        assert time.monotonic() < deadline, f"the renewed certificate was not picked up; log:\n{server.log_tail()}"
        time.sleep(0.5)
    after = _presented_serial(server)
    assert after != before
    assert "configuration reloaded" in server.log_path.read_text(errors="replace")
    # A key that is not the certificate's: refused, named in the log, and the renewed pair stays.
    subprocess.run(["openssl", "genrsa", "-out", str(KEY), "2048"], check=True, capture_output=True)
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while "server.tls_key_file" not in server.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"the bad key was not reported; log:\n{server.log_tail()}"
        time.sleep(0.5)
    assert _presented_serial(server) == after
    # Put the renewed key back, so the server shuts down as it started.
    KEY.write_bytes((_DIRECTORY / "renewed.key").read_bytes())
