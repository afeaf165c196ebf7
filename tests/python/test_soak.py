"""Soak (issue 10): the gateway at saturation for `CONCLAVE_SOAK_SECONDS` (120 in `make test`,
1800 with `make soak`), with mixed traffic from several users: workflow answers, direct model
calls, embeddings and model lists, plus one user who floods and is held back by the per-user
rate limit. After a warm-up (the first quarter):

- the gateway's resident memory grows by at most 5% (its largest sample in the last quarter
  against its sample at the end of the warm-up);
- its open file descriptors stay flat (at most 8 more);
- the chat p99 latency of the last quarter is at most twice that of the second (the machine is
  shared, so the bound is loose; a leak or a growing queue breaks it by far more);
- no request fails, except the deliberate 429s of the flooding user.

The samples and numbers are kept in var/test-artefacts/soak.json (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import ARTEFACTS, CONCLAVE_BIN, REPO_ROOT

SECONDS = int(os.environ.get("CONCLAVE_SOAK_SECONDS", "120"))
# 40 requests a minute per user: the workers stay under it, the flood does not.
SERVER_ENV = {"CONCLAVE_LIMITS__REQUESTS_PER_MINUTE": "40"}


def _token(server, user: str) -> str:
    return subprocess.run([CONCLAVE_BIN, "token", "--user", user], cwd=REPO_ROOT, env=server.env, check=True,
                          capture_output=True, text=True).stdout.strip()


def _call(url: str, token: str, body: dict | None) -> tuple[int, float]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    except (urllib.error.URLError, OSError):
        status = 0
    return status, time.monotonic() - started


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def test_the_gateway_holds_steady_at_saturation(server) -> None:
    base = server.base_url
    pid = server.process.pid
    started = time.monotonic()
    deadline = started + SECONDS
    lock = threading.Lock()
    chats: list[tuple[float, float]] = []  # (seconds since start, latency)
    failures: list[str] = []
    statuses: dict[str, dict[int, int]] = {}
    samples: list[dict] = []

    def count(kind: str, status: int) -> None:
        with lock:
            statuses.setdefault(kind, {}).setdefault(status, 0)
            statuses[kind][status] += 1

    def worker(user: str, kind: str) -> None:
        token = _token(server, user)
        turn = 0
        while time.monotonic() < deadline:
            turn += 1
            began = time.monotonic()
            if kind == "workflow":
                body = {"model": "conclave/single", "max_tokens": 16, "temperature": 0, "seed": turn,
                        "messages": [{"role": "user", "content": f"How many days of annual leave do I get? ({turn})"}]}
                status, latency = _call(f"{base}/v1/chat/completions", token, body)
            elif kind == "direct":
                body = {"model": "smollm2", "max_tokens": 8, "messages": [{"role": "user", "content": f"Say a number: {turn}"}]}
                status, latency = _call(f"{base}/v1/chat/completions", token, body)
            else:
                status, latency = _call(f"{base}/v1/embeddings", token, {"input": [f"annual leave {turn}", "travel policy"]})
            count(kind, status)
            if status != 200:
                with lock:
                    failures.append(f"{kind} by {user}: {status}")
            elif kind != "embeddings":
                with lock:
                    chats.append((began - started, latency))
            # Stay under the per-user limit (40 a minute).
            time.sleep(max(0.0, 1.6 - (time.monotonic() - began)))

    def flood() -> None:
        token = _token(server, "u-admin")
        while time.monotonic() < deadline:
            status, _ = _call(f"{base}/v1/models", token, None)
            count("flood", status)
            if status not in (200, 429):
                with lock:
                    failures.append(f"flood: {status}")
            time.sleep(0.05)

    def sampler() -> None:
        while time.monotonic() < deadline:
            samples.append({"t": round(time.monotonic() - started, 1), "rss_kib": _rss_kib(pid),
                            "fds": len(os.listdir(f"/proc/{pid}/fd"))})
            time.sleep(2)

    threads = [threading.Thread(target=worker, args=args) for args in
               [("u-employee", "workflow"), ("u-hr", "workflow"), ("u-finance", "direct"), ("u-engineer", "direct"),
                ("u-manager-ops", "embeddings")]]
    threads += [threading.Thread(target=flood), threading.Thread(target=sampler)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 300)

    quarter = SECONDS / 4
    warm = [s for s in samples if s["t"] <= quarter][-1]
    last = [s for s in samples if s["t"] >= 3 * quarter]
    second = [latency for t, latency in chats if quarter <= t < 2 * quarter]
    fourth = [latency for t, latency in chats if t >= 3 * quarter]
    rss_growth = max(s["rss_kib"] for s in last) / warm["rss_kib"] - 1
    fd_growth = max(s["fds"] for s in last) - warm["fds"]
    report = {
        "seconds": SECONDS, "statuses": statuses, "failures": failures[:20], "samples": samples,
        "rss_kib_after_warmup": warm["rss_kib"], "rss_kib_max_last_quarter": max(s["rss_kib"] for s in last),
        "rss_growth": rss_growth, "fds_after_warmup": warm["fds"], "fds_max_last_quarter": max(s["fds"] for s in last),
        "chat_p99_second_quarter_s": _percentile(second, 99), "chat_p99_last_quarter_s": _percentile(fourth, 99),
        "chat_requests": len(chats),
    }
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "soak.json").write_text(json.dumps(report, indent=2))
    summary = {k: v for k, v in report.items() if k != "samples"}

    assert not failures, f"requests failed: {summary}\n{server.log_tail()}"
    assert statuses.get("flood", {}).get(429, 0) > 0, f"the flood was never limited: {summary}"
    assert len(second) >= 3 and len(fourth) >= 3, summary
    assert rss_growth <= 0.05, f"RSS grew {rss_growth:.1%} after warm-up: {summary}"
    assert fd_growth <= 8, f"open file descriptors grew by {fd_growth}: {summary}"
    assert report["chat_p99_last_quarter_s"] <= 2 * report["chat_p99_second_quarter_s"], f"p99 latency rose: {summary}"
