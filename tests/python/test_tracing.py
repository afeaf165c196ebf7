"""Tracing (docs/observability.md#tracing): a test OTLP/HTTP receiver, decoding with the
OpenTelemetry protocol's own bindings (opentelemetry-proto), gets one trace per request with the
request, workflow, step, model, retrieval and policy spans, correctly parented; a client's
`traceparent` is honoured and the response carries the request's trace context back."""

from __future__ import annotations

import gzip
import http.server
import json
import os
import threading
import time
import urllib.request

from conftest import _free_port
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

SPANS: list[dict] = []
_LOCK = threading.Lock()


class _Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with _LOCK:
            for resource in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        SPANS.append({
                            "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(), "name": span.name, "kind": span.kind,
                            "attributes": {a.key: _value(a.value) for a in span.attributes},
                            "service": service, "path": self.path,
                        })
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _value(value):
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


_PORT = _free_port()
_SERVER = http.server.ThreadingHTTPServer(("127.0.0.1", _PORT), _Receiver)
threading.Thread(target=_SERVER.serve_forever, daemon=True).start()

SERVER_ENV = {
    "CONCLAVE_TRACING__ENABLED": "true",
    "CONCLAVE_TRACING__ENDPOINT": f"http://127.0.0.1:{_PORT}/v1/traces",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    # JSON log lines at debug, to find the request's lines by their trace id.
    "CONCLAVE_LOGGING__FORMAT": "json",
    "CONCLAVE_LOGGING__LEVEL": "debug",
}
WORKFLOW = "conclave/planner-retriever-responder"


def _chat(server, traceparent: str | None) -> tuple[dict, dict]:
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    if traceparent:
        headers["traceparent"] = traceparent
    body = json.dumps({"model": WORKFLOW, "max_tokens": 48, "temperature": 0, "seed": 7,
                       "messages": [{"role": "user", "content": "How many days of annual leave do employees get?"}]})
    request = urllib.request.Request(f"{server.base_url}/v1/chat/completions", data=body.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}


def _trace(trace_id: str, names: set[str], timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        with _LOCK:
            spans = [s for s in SPANS if s["trace_id"] == trace_id]
        if names <= {s["name"] for s in spans} or time.monotonic() > deadline:
            return spans
        time.sleep(0.3)


def test_one_trace_per_request_with_step_and_model_spans_under_the_clients_traceparent(server) -> None:
    trace_id, parent = os.urandom(16).hex(), os.urandom(8).hex()
    answer, headers = _chat(server, f"00-{trace_id}-{parent}-01")
    assert answer["choices"][0]["message"]["content"]
    # The response names the request's trace: the client's trace id, the server span's id.
    returned = headers.get("traceparent", "")
    assert returned.startswith(f"00-{trace_id}-") and returned.endswith("-01"), headers

    roles = [step["role"] for step in answer["conclave"]["trace"]]
    expected = {"invoke_workflow planner-retriever-responder"} | {f"invoke_agent {role}" for role in roles}
    spans = _trace(trace_id, expected | {"policy workflow"})
    by_name: dict[str, list[dict]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    assert expected <= set(by_name), sorted(by_name)
    assert all(span["path"] == "/v1/traces" for span in spans)
    assert spans[0]["service"].get("service.name") == "conclave"

    # The server span continues the client's span and is the one the response names.
    servers = [s for s in spans if s["kind"] == 2]  # SPAN_KIND_SERVER
    assert len(servers) == 1, [(s["name"], s["kind"]) for s in spans]
    request_span = servers[0]
    assert request_span["parent"] == parent
    assert returned.split("-")[2] == request_span["span_id"]
    assert request_span["attributes"].get("http.response.status_code") == 200

    ids = {s["span_id"]: s for s in spans}
    workflow = by_name["invoke_workflow planner-retriever-responder"][0]
    # The run's span names the configuration version the request ran on, as the answer does.
    assert workflow["attributes"]["conclave.config_version"] == answer["conclave"]["config_version"] == 1
    assert ids[workflow["parent"]] is request_span or workflow["parent"] == request_span["span_id"]
    for role in roles:
        step = by_name[f"invoke_agent {role}"][0]
        assert step["parent"] == workflow["span_id"], (role, step)
        assert step["attributes"]["gen_ai.agent.name"] == role
        assert step["attributes"]["conclave.step.attempt"] == 1
    # Model calls: children of the steps that made them, with the GenAI attributes.
    models = [s for s in spans if s["name"].startswith("chat ")]
    assert models, sorted(by_name)
    step_ids = {by_name[f"invoke_agent {role}"][0]["span_id"] for role in roles}
    for model in models:
        assert model["parent"] in step_ids, model
        assert model["kind"] == 3  # SPAN_KIND_CLIENT
        assert model["attributes"]["gen_ai.operation.name"] == "chat"
        assert model["attributes"]["gen_ai.usage.input_tokens"] > 0
        assert model["attributes"]["server.address"].startswith("http://127.0.0.1:")
    # The retriever's work and the policy decisions are spans of the same trace.
    assert any(s["name"] == "retrieve documents" for s in spans)
    assert by_name["policy workflow"][0]["attributes"]["conclave.policy.decision"] == "allow"
    # Each span of the trace hangs off another one of it, or off the client's span.
    for span in spans:
        assert span["parent"] == parent or span["parent"] in ids, span
    # The request's log lines carry its trace id and the id of the span they were written in.
    lines = [json.loads(line) for line in server.log_path.read_text(errors="replace").splitlines() if line.startswith("{")]
    traced = [line for line in lines if line.get("trace_id") == trace_id]
    assert any(line["message"] == "chat run started" for line in traced), lines[-20:]
    assert all(line.get("span_id") in ids for line in traced), traced


def test_a_request_without_traceparent_starts_a_trace_and_gets_it_back(server) -> None:
    _, headers = _chat(server, None)
    returned = headers.get("traceparent", "")
    version, trace_id, span_id, flags = returned.split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16 and flags == "01"
    spans = _trace(trace_id, {"invoke_workflow planner-retriever-responder"})
    assert any(s["span_id"] == span_id and s["parent"] == "" for s in spans), spans
