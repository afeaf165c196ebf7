"""Limits of `conclave serve`: over raw sockets, oversized headers, a body that trickles in past
`server.body_timeout_seconds`, and a connection that sends nothing past
`server.idle_timeout_seconds`; with the official OpenAI SDK, a per-user rate limit. (Body size,
message count and max_tokens limits, and the token quotas, are Swift unit tests in
ChatCompletionsTests and GovernanceAPITests.)"""

from __future__ import annotations

import json
import socket
import time

import openai
import pytest

SERVER_ENV = {
    "CONCLAVE_SERVER__MAX_HEADER_BYTES": "4096",
    "CONCLAVE_SERVER__MAX_HEADER_COUNT": "20",
    "CONCLAVE_SERVER__BODY_TIMEOUT_SECONDS": "1",
    "CONCLAVE_SERVER__IDLE_TIMEOUT_SECONDS": "2",
    "CONCLAVE_LIMITS__REQUESTS_PER_MINUTE": "3",
}


def _connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _read_all(sock: socket.socket, limit_s: float = 10) -> bytes:
    sock.settimeout(limit_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def test_oversized_headers_are_refused_and_the_server_keeps_serving(server) -> None:
    for headers in (
        f"X-Big: {'a' * 8000}\r\n",  # one field over the limit
        "".join(f"X-H{i}: v\r\n" for i in range(40)),  # too many fields
    ):
        with _connect(server) as sock:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
            response = _read_all(sock)
        # Refused: either an error status or the connection closed without an answer, never 200.
        assert _status(response) in (0, 400, 431), response[:200]
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _status(_read_all(sock)) == 200


def test_a_body_that_trickles_in_is_408_in_openai_shape(server) -> None:
    started = time.monotonic()
    with _connect(server) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {server.token}\r\nContent-Length: 200\r\n\r\n".encode()
            + b'{"messages":['
        )
        response = _read_all(sock, limit_s=15)
    assert _status(response) == 408, response[:300]
    body = response.split(b"\r\n\r\n", 1)[1]
    error = json.loads(body[body.index(b"{"):body.rindex(b"}") + 1])["error"]
    assert error["code"] == "request_timeout"
    assert time.monotonic() - started < 10


def test_an_idle_connection_is_closed(server) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        sock.settimeout(15)
        data = sock.recv(1024)  # returns b"" when the server closes the connection
        assert data == b""
        assert 1.5 <= time.monotonic() - started < 10


def test_the_openai_sdk_sees_a_rate_limit_error_with_retry_after(server) -> None:
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.token, max_retries=0, timeout=30)
    for _ in range(3):
        assert client.models.list().data
    with pytest.raises(openai.RateLimitError) as refused:
        client.models.list()
    assert refused.value.status_code == 429
    assert refused.value.code == "rate_limit_exceeded"
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 20
    # Probes are never limited.
    with _connect(server) as sock:
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _status(_read_all(sock)) == 200
