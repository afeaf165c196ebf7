"""Observability: docs/observability.md, the Grafana dashboard and the alert rules, held to a real
gateway and a real Prometheus.

- promtool (Debian's prometheus package) checks the alert rules and runs their unit tests.
- The metric table in docs/observability.md is parsed. Every dashboard and alert query may use only
  documented series, and only their documented labels.
- A real `conclave serve` (the `server` fixture) answers one chat completion (the `single`
  workflow: one responder step and one model call, so a loaded machine does not time it out;
  every role's step timer exists from the start either way). Its /metrics page
  must then hold every series the table says a gateway has at that point, with the documented
  type, label names, label values and histogram buckets, and nothing the table lacks.
- A real `prometheus` scrapes that gateway every second and loads the alert rules: it sees the
  chat request and its responder step, every dashboard query evaluates, the panels a single
  gateway feeds return data, and every rule evaluates without error and without firing.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest
import yaml

from conftest import REPO_ROOT, Server, _free_port

DOC = REPO_ROOT / "docs" / "observability.md"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "conclave-dashboard.json"
ALERT_RULES = REPO_ROOT / "deploy" / "prometheus" / "conclave-alerts.yaml"
ALERT_TESTS = REPO_ROOT / "deploy" / "prometheus" / "conclave-alerts.test.yaml"
ROLES = ["planner", "retriever", "reasoner", "validator", "responder"]
QUESTION = "What is the yearly annual leave entitlement for staff working full time?"
WORKFLOW, STEP_ROLE = "conclave/single", "responder"
# Labels Prometheus or the Kubernetes service discovery add to every scraped series.
TARGET_LABELS = {"instance", "job", "namespace", "pod", "service", "container", "endpoint", "conclave_io_role"}
PROMETHEUS_TIMEOUT_S = 60

# ---------------------------------------------------------------------------------------------
# docs/observability.md


@dataclass(frozen=True)
class Documented:
    name: str
    type: str
    labels: frozenset[str]
    processes: frozenset[str]
    appears: str

    @property
    def expected_on_a_gateway(self) -> bool:
        """In a one-process gateway's page after one chat request, by the table's own words."""
        return "gateway" in self.processes and self.appears in ("start", "first request")


def _table(header: str) -> list[list[str]]:
    """The rows of the Markdown table in DOC whose header line is `header`, as stripped cells."""
    lines = DOC.read_text().splitlines()
    assert header in lines, f"{DOC.name} has no table with the header {header!r}"
    start = lines.index(header) + 2  # the header and the --- line
    rows = []
    width = header.count("|") - 1
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == width, f"{DOC.name}: a row with {len(cells)} cells instead of {width}: {line}"
        rows.append(cells)
    assert rows, f"{DOC.name}: the table {header!r} is empty"
    return rows


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def documented_series() -> dict[str, Documented]:
    series = {}
    for name, kind, labels, _unit, process, appears, _meaning in _table(
            "| series | type | labels | unit | process | appears | meaning |"):
        [name] = _ticked(name)
        assert name not in series, f"{name} is documented twice"
        assert kind in ("counter", "gauge", "histogram"), f"{name}: type {kind!r}"
        assert appears in ("start", "first request", "event", "distributed"), f"{name}: appears {appears!r}"
        processes = frozenset(p.strip() for p in process.split(","))
        assert processes and processes <= {"gateway", "worker"}, f"{name}: process {process!r}"
        assert labels == "none" or _ticked(labels), f"{name}: labels {labels!r}"
        series[name] = Documented(name, kind, frozenset(_ticked(labels)), processes, appears)
    return series


def documented_label_values() -> dict[tuple[str, str], set[str]]:
    """(series, label) -> the values the doc allows, for the labels whose values are a closed set."""
    values: dict[tuple[str, str], set[str]] = {}
    for label, names, allowed in _table("| label | series | values |"):
        [label] = _ticked(label)
        for name in _ticked(names):
            values[(name, label)] = set(_ticked(allowed))
    return values


def documented_buckets() -> list[float]:
    match = re.search(r"Every histogram has the same buckets, in seconds: ([0-9., ]+)", DOC.read_text().replace("\n", " "))
    assert match, f"{DOC.name} does not state the histogram buckets"
    return [float(b) for b in match.group(1).replace(" ", "").strip(",.").split(",")]


DOCUMENTED = documented_series()


def test_the_doc_tables_describe_existing_series_consistently() -> None:
    values = documented_label_values()
    for (name, label) in values:
        assert name in DOCUMENTED, f"label values of an undocumented series {name}"
        assert label in DOCUMENTED[name].labels, f"{name} has no documented label {label}"
    histograms = [s for s in DOCUMENTED.values() if s.type == "histogram"]
    assert all(s.name.endswith("_seconds") for s in histograms), "histograms are durations in seconds"
    assert all(s.name.endswith("_total") for s in DOCUMENTED.values() if s.type == "counter")
    assert documented_buckets()[0] == 0.0005 and documented_buckets()[-1] == 60


# ---------------------------------------------------------------------------------------------
# PromQL in the dashboard and the alert rules

SERIES_SUFFIXES = ("_bucket", "_count", "_sum")


def series_of(metric: str) -> Documented:
    """The documented series a PromQL metric name belongs to (a histogram's _bucket/_count/_sum)."""
    if metric in DOCUMENTED:
        return DOCUMENTED[metric]
    for suffix in SERIES_SUFFIXES:
        base = metric.removesuffix(suffix)
        if base != metric and base in DOCUMENTED and DOCUMENTED[base].type == "histogram":
            return DOCUMENTED[base]
    raise AssertionError(f"{metric} is not a documented series (nor a documented histogram's {'/'.join(SERIES_SUFFIXES)})")


def labels_in(expr: str) -> set[str]:
    """Label names an expression groups by or matches on."""
    grouped = {label.strip() for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr)
               for label in clause.split(",") if label.strip()}
    matched = set(re.findall(r"[{,]\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", expr))
    return grouped | matched


def check_expression(expr: str) -> list[str]:
    """Problems of one PromQL expression: undocumented series, labels those series do not have."""
    metrics = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", expr)) | set(re.findall(r"\b(conclave_[a-z0-9_]+)\b", expr))
    problems = []
    known: set[str] = set(TARGET_LABELS)
    for metric in metrics:
        try:
            series = series_of(metric)
        except AssertionError as error:
            problems.append(str(error))
            continue
        known |= series.labels
        if metric.endswith("_bucket"):
            known.add("le")
    if not metrics:
        problems.append(f"no metric in {expr!r}")
    unknown = labels_in(expr) - known
    if unknown:
        problems.append(f"labels {sorted(unknown)} are not documented for {sorted(metrics)} in {expr!r}")
    return problems


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_targets() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, target) for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERT_RULES.read_text())["groups"] for rule in group["rules"]]


def test_dashboard_uses_a_datasource_variable_and_core_panels_only() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39
    assert board["uid"] == "conclave-overview"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert "__requires" not in board, "no plugin requirements: core panels only"
    assert {p["type"] for p in board["panels"]} <= {"row", "timeseries", "stat", "state-timeline"}
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert panel["datasource"] == datasource, panel["title"]
        assert all(t["datasource"] == datasource for t in panel["targets"]), panel["title"]
    for name in ("namespace", "model"):
        assert variables[name]["datasource"] == datasource
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_dashboard_queries_use_only_documented_series_and_labels() -> None:
    problems = []
    for panel, target in dashboard_targets():
        problems += [f"{panel['title']}: {p}" for p in check_expression(target["expr"])]
        # A legend can only name labels the query keeps.
        kept = {label.strip() for clause in re.findall(r"\bby\s*\(([^)]*)\)", target["expr"]) for label in clause.split(",")}
        for label in re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", target.get("legendFormat", "")):
            if label not in kept:
                problems.append(f"{panel['title']}: legend {{{{{label}}}}} names a label the query aggregates away")
    assert not problems, "\n".join(problems)
    variable_queries = [v["query"]["query"] for v in dashboard()["templating"]["list"] if v["type"] == "query"]
    assert not [p for q in variable_queries for p in check_expression(q)]


def test_dashboard_covers_the_required_series() -> None:
    used = {series_of(m).name for _, t in dashboard_targets() for m in re.findall(r"\b(conclave_[a-z0-9_]+)\b", t["expr"])}
    required = {
        "conclave_http_requests_total", "conclave_http_request_duration_seconds", "conclave_step_duration_seconds",
        "conclave_model_tokens_total", "conclave_inference_tokens_total", "conclave_inference_replicas_desired",
        "conclave_inference_replicas_ready", "conclave_inference_queue_depth", "conclave_inference_replica_breaker",
        "conclave_governance_decisions_total", "conclave_audit_chain_valid", "conclave_bus_overhead_seconds",
        "conclave_bus_queue_seconds", "conclave_worker_steps_total", "conclave_process_cpu_seconds_total",
        "conclave_process_resident_memory_bytes",
    }
    assert required <= used, f"not on the dashboard: {sorted(required - used)}"


def test_alert_rules_use_only_documented_series_and_labels() -> None:
    problems = [f"{rule['alert']}: {p}" for rule in alert_rules() for p in check_expression(rule["expr"])]
    assert not problems, "\n".join(problems)


def test_the_expression_checks_catch_mistakes() -> None:
    """The checks above are not vacuous: a misspelt series, a label the series lacks, and a
    histogram suffix on a counter are all reported."""
    assert check_expression("rate(conclave_http_request_total[5m])")
    assert check_expression('sum by (route) (rate(conclave_step_duration_seconds_count[5m]))')
    assert check_expression("rate(conclave_model_tokens_total_count[5m])")
    assert not check_expression('sum by (role, le) (rate(conclave_step_duration_seconds_bucket{namespace=~".*"}[5m]))')


# ---------------------------------------------------------------------------------------------
# promtool


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Debian's prometheus package (scripts/setup.sh does)")
    return path


def test_promtool_accepts_the_alert_rules() -> None:
    check = subprocess.run([binary("promtool"), "check", "rules", str(ALERT_RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in check.stdout


def test_the_alert_rules_unit_tests_pass() -> None:
    """deploy/prometheus/conclave-alerts.test.yaml: each alert fires on synthetic series and stays
    silent on the look-alikes (pending within `for`, probes' 503s, a valid chain)."""
    run = subprocess.run([binary("promtool"), "test", "rules", ALERT_TESTS.name], cwd=ALERT_TESTS.parent,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    tested = set(re.findall(r"alertname: (\w+)", ALERT_TESTS.read_text()))
    assert tested == {rule["alert"] for rule in alert_rules()}, "every alert has a unit test"


# ---------------------------------------------------------------------------------------------
# A real gateway and a real Prometheus


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Scrape:
    types: dict[str, str]
    samples: list[Sample]

    def family(self, sample: Sample) -> str:
        if sample.name in self.types:
            return sample.name
        for suffix in SERIES_SUFFIXES:
            base = sample.name.removesuffix(suffix)
            if base != sample.name and self.types.get(base) == "histogram":
                return base
        raise AssertionError(f"sample {sample.name} has no # TYPE line")

    def of(self, family: str) -> list[Sample]:
        return [s for s in self.samples if self.family(s) == family]


LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> Scrape:
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert types.setdefault(name, kind) == kind, f"two types for {name}"
        elif line and not line.startswith("#"):
            match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?", line)
            assert match, f"unparsable /metrics line: {line!r}"
            samples.append(Sample(match.group(1), dict(LABEL.findall(match.group(2) or "")), float(match.group(3))))
    return Scrape(types, samples)


def http_json(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector; fails the test on a query error."""
        try:
            answer = http_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
        except urllib.error.HTTPError as error:
            pytest.fail(f"Prometheus refused {expr!r}: {error.code} {error.read().decode(errors='replace')}")
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, description: str, condition, timeout: float = PROMETHEUS_TIMEOUT_S) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited with {self.process.returncode}; log tail:\n{self.log_tail()}")
            outcome = condition()
            if outcome:
                return outcome
            if time.monotonic() > deadline:
                pytest.fail(f"Prometheus: {description} not within {timeout:.0f}s; log tail:\n{self.log_tail()}")
            time.sleep(0.5)


@pytest.fixture(scope="module")
def prometheus(server: Server) -> Iterator[Prometheus]:
    """A real prometheus on a free loopback port, scraping the gateway every second, with the
    alert rules loaded and evaluated every second; its storage in a temporary directory."""
    executable = binary("prometheus")
    with tempfile.TemporaryDirectory(prefix="conclave-prometheus-") as tmp:
        tmp_path = Path(tmp)
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERT_RULES)],
            "scrape_configs": [{"job_name": "conclave-gateway",
                                "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}]}],
        }))
        port = _free_port()
        log_path = tmp_path / "prometheus.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [executable, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        instance = Prometheus(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        try:
            def ready() -> bool:
                try:
                    with urllib.request.urlopen(f"{instance.url}/-/ready", timeout=2) as response:
                        return response.status == 200
                except (urllib.error.URLError, OSError):
                    return False
            instance.wait_for("/-/ready", ready)
            yield instance
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class ChatRound:
    before: dict[str, float | None]
    scrape: Scrape


CHAT_OK = 'conclave_http_requests_total{route="/v1/chat/completions", method="POST", status="200"}'


def step_count(role: str) -> str:
    return f'conclave_step_duration_seconds_count{{role="{role}"}}'


@pytest.fixture(scope="module")
def chat_round(server: Server, client: openai.OpenAI, prometheus: Prometheus) -> ChatRound:
    """Once Prometheus has scraped the gateway: what it saw, then one chat completion, then the
    gateway's own /metrics page."""
    prometheus.wait_for("a first scrape of the gateway", lambda: prometheus.query("conclave_process_cpu_seconds_total"))
    before = {expr: prometheus.value(expr) for expr in (CHAT_OK, step_count(STEP_ROLE))}
    response = client.chat.completions.create(model=WORKFLOW, messages=[{"role": "user", "content": QUESTION}],
                                              temperature=0, seed=42, max_tokens=64)
    assert response.choices[0].finish_reason == "stop", f"the chat request did not complete: {response!r}"
    with urllib.request.urlopen(f"{server.base_url}/metrics", timeout=10) as page:
        assert page.headers.get_content_type() == "text/plain"
        scrape = parse_exposition(page.read().decode())
    return ChatRound(before=before, scrape=scrape)


def test_every_documented_gateway_series_is_in_a_real_scrape(chat_round: ChatRound) -> None:
    scrape = chat_round.scrape
    problems = []
    for series in DOCUMENTED.values():
        if not series.expected_on_a_gateway:
            continue
        if series.name not in scrape.types:
            problems.append(f"{series.name}: documented for a gateway ({series.appears}) but not in /metrics")
            continue
        if scrape.types[series.name] != series.type:
            problems.append(f"{series.name}: /metrics says {scrape.types[series.name]}, the doc {series.type}")
        samples = scrape.of(series.name)
        if not samples:
            problems.append(f"{series.name}: a # TYPE line but no sample")
        for sample in samples:
            labels = set(sample.labels) - {"le"}
            if labels != series.labels:
                problems.append(f"{sample.name}: labels {sorted(labels)}, documented {sorted(series.labels)}")
                break
    assert not problems, "\n".join(problems)


def test_every_series_in_a_real_scrape_is_documented(chat_round: ChatRound) -> None:
    undocumented = sorted(name for name in chat_round.scrape.types if name not in DOCUMENTED)
    assert not undocumented, f"in /metrics but not in {DOC.name}: {undocumented}"
    assert all(name.startswith("conclave_") for name in chat_round.scrape.types)


def test_scraped_label_values_are_the_documented_ones(chat_round: ChatRound) -> None:
    scrape = chat_round.scrape
    problems = []
    for (name, label), allowed in documented_label_values().items():
        seen = {s.labels[label] for s in scrape.of(name) if label in s.labels} if name in scrape.types else set()
        if seen - allowed:
            problems.append(f"{name}{{{label}}}: {sorted(seen - allowed)} not among the documented {sorted(allowed)}")
    assert not problems, "\n".join(problems)
    # The closed sets are the ones a gateway shows: every role's step timer, the gateway's process role.
    assert {s.labels["role"] for s in scrape.of("conclave_step_duration_seconds")} == set(ROLES)
    assert {s.labels["role"] for s in scrape.of("conclave_process_cpu_seconds_total")} == {"gateway"}


def test_histograms_have_the_documented_buckets(chat_round: ChatRound) -> None:
    scrape = chat_round.scrape
    buckets = documented_buckets() + [float("inf")]
    histograms = [name for name, kind in scrape.types.items() if kind == "histogram"]
    assert "conclave_http_request_duration_seconds" in histograms
    for name in histograms:
        bounds = {float(s.labels["le"]) for s in scrape.of(name) if s.name == f"{name}_bucket"}
        assert sorted(bounds) == buckets, f"{name}: buckets {sorted(bounds)}"


# Panels a single gateway feeds once it has answered a chat request (the others need distributed
# mode, workers, a model error, or several processes).
PANELS_WITH_DATA = {
    "Requests by route and status", "Chat latency p50 / p95 / p99", "Latency p95 by route", "Requests in flight",
    "Step latency p95 by role", "Steps completed by role", "Tokens per second", "Model call latency p95",
    "Replicas desired and ready", "Admission queue depth", "Calls in flight per replica", "Breaker state per replica",
    "Decisions by point and outcome", "Audit records and write errors", "Audit chain", "CPU (cores used)",
    "Resident memory",
}


def dashboard_query(expr: str) -> str:
    """A panel's query as Grafana sends it, with the variables at All."""
    return (expr.replace("$__rate_interval", "1m").replace('"$namespace"', '".*"').replace('"$model"', '".*"'))


def test_prometheus_scrapes_the_gateway_and_sees_the_chat_request(prometheus: Prometheus, chat_round: ChatRound) -> None:
    before = chat_round.before

    def grown(expr: str) -> bool:
        now = prometheus.value(expr)
        return now is not None and now > (before[expr] or 0)

    prometheus.wait_for(f"{CHAT_OK} growing after the chat request", lambda: grown(CHAT_OK))
    prometheus.wait_for(f"{step_count(STEP_ROLE)} growing after the chat request", lambda: grown(step_count(STEP_ROLE)))
    # Only that step was timed: the workflow has no other.
    assert prometheus.value(f'sum(conclave_step_duration_seconds_count{{role!="{STEP_ROLE}"}})') == 0
    [target] = http_json(f"{prometheus.url}/api/v1/targets")["data"]["activeTargets"]
    assert (target["health"], target["lastError"]) == ("up", ""), target
    tokens = prometheus.value('sum(conclave_model_tokens_total{direction="completion"})')
    assert tokens and tokens > 0


def test_every_dashboard_query_evaluates_in_prometheus(prometheus: Prometheus, chat_round: ChatRound) -> None:
    # rate() needs two samples of a series in its window, and a route's series is born with its
    # first answered request.
    prometheus.wait_for("two scrapes holding the chat request",
                        lambda: (prometheus.value(f"count_over_time({CHAT_OK}[1m])") or 0) >= 2)
    titles = {panel["title"] for panel, _ in dashboard_targets()}
    assert PANELS_WITH_DATA <= titles, f"unknown panels: {sorted(PANELS_WITH_DATA - titles)}"
    empty = {}
    for panel, target in dashboard_targets():
        result = prometheus.query(dashboard_query(target["expr"]))  # fails the test on a PromQL error
        if not result:
            empty.setdefault(panel["title"], []).append(target["refId"])
    no_data = sorted(title for title in PANELS_WITH_DATA if title in empty
                     and len(empty[title]) == len([t for p, t in dashboard_targets() if p["title"] == title]))
    assert not no_data, f"panels with no data on a gateway that answered a chat request: {no_data}"


def test_prometheus_evaluates_every_alert_rule_without_error_or_firing(prometheus: Prometheus, chat_round: ChatRound) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = http_json(f"{prometheus.url}/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = rules and all(not rule["lastEvaluation"].startswith("0001-") for rule in rules)
        return rules if done else None

    rules = prometheus.wait_for("every rule evaluated once", evaluated)
    assert {r["name"] for r in rules} == {r["alert"] for r in alert_rules()}
    broken = [f"{r['name']}: {r['health']} {r.get('lastError', '')}" for r in rules if r["health"] != "ok"]
    assert not broken, "\n".join(broken)
    firing = [r["name"] for r in rules if r["state"] == "firing"]
    assert not firing, f"alerts firing on a healthy gateway: {firing}"
