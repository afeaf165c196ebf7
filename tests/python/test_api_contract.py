"""Conclave's API contract (Sources/ConclaveServer/Resources/OpenAPI/openapi.json) against the
running server, so the document cannot drift from the code:

- the server serves exactly the committed document at /openapi.json;
- every route the sources register is in the document, and every documented path exists on the
  server (a wrong method answers 405, not 404);
- the simple routes' answers validate against their documented schemas;
- schemathesis generates requests from the document (valid and invalid, fixed seed, a bounded
  number per operation) and checks every answer: no 5xx, a documented status, content type,
  headers and body schema, and invalid input rejected with a 4xx.

The server is the real one from conftest.py (SmolLM2 behind llama-server, authentication on).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT / "Sources" / "ConclaveServer" / "Resources" / "OpenAPI" / "openapi.json"
SCHEMATHESIS = REPO_ROOT / ".venv" / "bin" / "schemathesis"
# Bounded and reproducible: schemathesis's examples per operation and its seed.
MAX_EXAMPLES = int(os.environ.get("CONCLAVE_SCHEMATHESIS_EXAMPLES", "25"))
SEED = 20261126
# This module's server: generated requests may ask for up to 64 tokens and get 60 s, so a
# generated request that runs the full workflow stays bounded (larger asks are documented 400s).
SERVER_ENV = {"CONCLAVE_SERVER__MAX_TOKENS": "64", "CONCLAVE_SERVER__REQUEST_TIMEOUT_SECONDS": "60"}


def _spec() -> dict:
    return json.loads(SPEC_PATH.read_text())


def _request(server, method: str, path: str, token: str | None = None, body: bytes | None = None):
    request = urllib.request.Request(f"{server.base_url}{path}", method=method, data=body)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _validate(spec: dict, schema: dict, document) -> None:
    # Resolve the document's own $refs against the whole spec.
    resolver_schema = {**schema, "components": spec["components"]}
    jsonschema.validate(document, resolver_schema, cls=jsonschema.Draft202012Validator)


def test_served_document_is_the_committed_one(server) -> None:
    status, headers, body = _request(server, "GET", "/openapi.json")
    assert status == 200
    assert headers.get("Content-Type", "").startswith("application/json")
    assert json.loads(body) == _spec()


def test_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate

    validate(_spec())


def test_every_registered_route_is_documented_and_every_documented_path_exists(server) -> None:
    spec = _spec()
    # The routes the gateway's sources register (router.get/post/put/delete("PATH")).
    registered: set[tuple[str, str]] = set()
    for source in (REPO_ROOT / "Sources" / "ConclaveServer").rglob("*.swift"):
        if source.name == "WorkerServer.swift":  # the worker's own probes, not the gateway's API
            continue
        for method, path in re.findall(r'router\.(get|post|put|delete|patch)\("([^"]+)"', source.read_text()):
            # Hummingbird's `:name` parameters are OpenAPI's `{name}`.
            registered.add((method, re.sub(r":([A-Za-z_]+)", r"{\1}", path)))
    documented = {(method, path) for path, operations in spec["paths"].items() for method in operations}
    assert registered, "no routes found in the sources: has the registration style changed?"
    assert registered == documented, (
        f"undocumented routes: {sorted(registered - documented)}; documented but not registered: {sorted(documented - registered)}"
    )
    for path, operations in spec["paths"].items():
        # A method the path does not have is 405 (the route exists), in OpenAI's error shape.
        wrong = "DELETE" if "delete" not in operations else "PATCH"
        concrete = re.sub(r"\{[A-Za-z_]+\}", "x", path)
        status, _, body = _request(server, wrong, concrete, token=server.token)
        assert status == 405, f"{wrong} {path} answered {status}, expected 405 (is the path served?)"
        _validate(spec, {"$ref": "#/components/schemas/Error"}, json.loads(body))
    status, _, body = _request(server, "GET", "/v1/no-such-route", token=server.token)
    assert status == 404
    _validate(spec, {"$ref": "#/components/schemas/Error"}, json.loads(body))


@pytest.mark.parametrize(
    "path,schema",
    [
        ("/healthz", "Health"),
        ("/readyz", "Readiness"),
        ("/v1/models", "ModelList"),
    ],
)
def test_simple_routes_match_their_schemas(server, path: str, schema: str) -> None:
    status, _, body = _request(server, "GET", path, token=server.token)
    assert status == 200
    _validate(_spec(), {"$ref": f"#/components/schemas/{schema}"}, json.loads(body))


def test_schemathesis_finds_no_violation(server, tmp_path: Path) -> None:
    assert SCHEMATHESIS.exists(), "schemathesis is missing: run `make setup`"
    report = tmp_path / "schemathesis.xml"
    # An admin's token, so the admin route is exercised past its 403 too.
    admin = subprocess.run([os.environ.get("CONCLAVE_BIN") or str(REPO_ROOT / ".build" / "debug" / "conclave"),
                            "token", "--user", "u-admin"], cwd=REPO_ROOT, env=server.env, check=True,
                           capture_output=True, text=True).stdout.strip()
    command = [
        str(SCHEMATHESIS), "run", str(SPEC_PATH),
        "--url", server.base_url,
        "-H", f"Authorization: Bearer {admin}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_headers_conformance,response_schema_conformance,negative_data_rejection,ignored_auth",
        "--phases", "examples,coverage,fuzzing",
        "--mode", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--generation-database", "none",
        "--workers", "1",
        "--request-timeout", "90",
        "--suppress-health-check", "too_slow,filter_too_much",
        "--no-color",
        "--report", "junit", "--report-junit-path", str(report),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    # Keep the run's summary next to the other test artefacts.
    artefacts = REPO_ROOT / "var" / "test-artefacts"
    artefacts.mkdir(parents=True, exist_ok=True)
    (artefacts / "schemathesis.txt").write_text(output)
    assert result.returncode == 0, f"schemathesis found problems:\n{output[-8000:]}\nserver log:\n{server.log_tail()}"
    # It really ran every operation, and none was skipped.
    cases = ElementTree.parse(report).getroot().iter("testcase")
    tested = {case.get("name") for case in cases if case.find("skipped") is None}
    documented = {f"{method.upper()} {path}" for path, operations in _spec()["paths"].items() for method in operations}
    assert documented <= tested, f"schemathesis did not test {sorted(documented - tested)}:\n{output[-4000:]}"
    # The documented examples ran (a workflow answer, a stream, the direct model, embeddings):
    # both operations that carry examples passed that phase.
    examples = output.split("Examples (", 1)[1].split("Coverage (", 1)[0]
    assert re.search(r"\b2 passed\b", examples), output[-4000:]
