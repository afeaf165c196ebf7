"""Conclave's OpenAI-compatible API, exercised with the official `openai` Python package.

The `server` fixture (conftest.py) starts a real `conclave serve` with the Meridian example
documents ingested. The tests assert what the platform controls (shapes, status codes, finish
reasons, usage, citations, traces), never the model's wording.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request

import openai
import pytest

from conftest import REPO_ROOT

QUESTION = "What is the yearly annual leave entitlement for staff working full time?"
GENERATION = {"temperature": 0, "seed": 42, "max_tokens": 64}
FULL_STEPS = {"plan", "retrieve", "reason", "validate", "respond"}
WORKFLOW_MODELS = {
    "conclave/full",
    "conclave/single",
    "conclave/planner-responder",
    "conclave/planner-retriever-responder",
}


def _assert_citations(conclave: dict) -> None:
    citations = conclave.get("citations")
    assert isinstance(citations, list) and citations, f"expected non-empty conclave.citations, got {citations!r}"
    for citation in citations:
        assert isinstance(citation.get("source_id"), str) and citation["source_id"], citation


def test_non_streaming_full_workflow(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="conclave/full",
        messages=[{"role": "user", "content": QUESTION}],
        **GENERATION,
    )

    assert response.object == "chat.completion"
    assert response.model == "conclave/full"
    assert len(response.choices) == 1
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.total_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens

    raw = response.to_dict()
    assert isinstance(raw.get("conversation_id"), str) and raw["conversation_id"]
    assert response.model_extra.get("conversation_id") == raw["conversation_id"]

    conclave = raw.get("conclave")
    assert isinstance(conclave, dict), f"missing conclave extension: {raw!r}"
    assert conclave.get("workflow") == "full"
    assert isinstance(conclave.get("run_id"), str) and conclave["run_id"]
    _assert_citations(conclave)

    trace = conclave.get("trace")
    assert isinstance(trace, list)
    steps = {entry["step"]: entry for entry in trace}
    assert set(steps) == FULL_STEPS, f"trace steps: {[e.get('step') for e in trace]}"
    for name, entry in steps.items():
        assert entry["status"] == "completed", f"step {name}: {entry!r}"


def test_streaming_single_workflow(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="conclave/single",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
        **GENERATION,
    )

    chunks = list(stream)
    assert chunks, "the stream yielded no chunks"

    text = "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)
    assert text.strip(), "the streamed deltas carried no text"

    assert any(c.finish_reason == "stop" for chunk in chunks for c in chunk.choices)
    for chunk in chunks:
        assert chunk.object == "chat.completion.chunk"
        assert chunk.model == "conclave/single"

    final = chunks[-1]
    assert final.usage is not None, f"final chunk carries no usage: {final.to_dict()!r}"
    assert final.usage.total_tokens > 0
    assert final.choices == []

    extensions = [chunk.model_extra.get("conclave") for chunk in chunks if chunk.model_extra.get("conclave")]
    assert extensions, "no chunk carried the conclave extension"
    for conclave in extensions:
        assert conclave.get("workflow") == "single"
        _assert_citations(conclave)

    conversation_ids = {chunk.model_extra.get("conversation_id") for chunk in chunks}
    assert len(conversation_ids) == 1 and None not in conversation_ids


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as excinfo:
        client.chat.completions.create(
            model="conclave/nope",
            messages=[{"role": "user", "content": QUESTION}],
            **GENERATION,
        )
    error = excinfo.value
    assert error.status_code == 404
    assert error.code == "model_not_found"
    assert isinstance(error.body, dict)
    assert error.body.get("code") == "model_not_found"
    assert error.body.get("param") == "model"
    assert error.body.get("type") == "invalid_request_error"


def test_models_list(client: openai.OpenAI) -> None:
    models = client.models.list()
    ids = {model.id for model in models.data}
    assert WORKFLOW_MODELS <= ids, f"model ids: {sorted(ids)}"
    for model in models.data:
        assert model.object == "model"


def test_invalid_json_is_bad_request(server) -> None:
    request = urllib.request.Request(
        f"{server.base_url}/v1/chat/completions",
        data=b'{"model": "conclave/full", "messages": [',
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=30)
    error = excinfo.value
    assert error.code == 400
    assert error.headers.get_content_type() == "application/json"
    body = json.loads(error.read())
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "code", "param"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "invalid_request"


def test_wrong_api_key_is_unauthorized(server) -> None:
    intruder = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.token + "x", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError) as excinfo:
        intruder.chat.completions.create(model="conclave/full", messages=[{"role": "user", "content": QUESTION}], **GENERATION)
    error = excinfo.value
    assert error.status_code == 401
    assert isinstance(error.body, dict)
    # The reason (signature, expiry, issuer, ...) is never revealed.
    assert error.body.get("message") == "Invalid token."
    assert error.body.get("type") == "invalid_request_error"
    with pytest.raises(openai.AuthenticationError):
        intruder.models.list()


def test_direct_model_route(client: openai.OpenAI) -> None:
    """The model itself, without a workflow: a governed gateway to the replica pool."""
    response = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Say hello in one short sentence."}], **GENERATION
    )
    assert response.object == "chat.completion"
    assert response.model == "smollm2"
    assert response.choices[0].message.content
    assert response.usage is not None and response.usage.completion_tokens > 0
    chunks = list(
        client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Say hello."}], stream=True, **GENERATION
        )
    )
    assert chunks and chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "smollm2" in {m.id for m in client.models.list().data}


def _ask(client: openai.OpenAI, question: str, **metadata: str) -> tuple[str, dict]:
    response = client.chat.completions.create(
        model="conclave/full",
        messages=[{"role": "user", "content": question}],
        metadata=metadata or None,
        **GENERATION,
    )
    raw = response.to_dict()
    return response.choices[0].message.content or "", raw.get("conclave") or {}


def test_database_question_is_answered_from_a_governed_query(client: openai.OpenAI) -> None:
    # The expected count comes from the database itself, not from this test.
    with sqlite3.connect(REPO_ROOT / "examples" / "meridian" / "db" / "meridian.sqlite") as db:
        (count,) = db.execute("SELECT COUNT(*) FROM shipments WHERE status = 'delayed'").fetchone()
    answer, conclave = _ask(client, "How many shipments are delayed at the moment?")
    assert f"{count} shipments" in answer, answer
    assert any(c["source_id"] == "db:shipments" for c in conclave["citations"]), conclave["citations"]


def test_restricted_table_is_refused_without_leaking(client: openai.OpenAI) -> None:
    # u-employee may not read invoices (access policy: finance, sales, auditor, executive).
    answer, conclave = _ask(client, "What is the total amount of the overdue invoices?")
    assert "restricted" in answer.lower() and "finance" in answer.lower(), answer
    assert not any(c["source_id"].startswith("db:") for c in conclave.get("citations", [])), conclave


def test_api_question_is_answered_from_the_internal_api(client: openai.OpenAI) -> None:
    fixtures = json.loads((REPO_ROOT / "examples" / "meridian" / "api" / "fixtures.json").read_text())
    occupancy = fixtures["hubs"]["HAM"]["occupancy_pct"]
    answer, conclave = _ask(client, "What is the occupancy of the Hamburg hub right now?")
    assert str(occupancy) in answer, answer
    assert any(c["source_id"] == "api:/hubs/HAM/status" for c in conclave["citations"]), conclave["citations"]


def test_data_access_mode_is_chosen_per_request(client: openai.OpenAI) -> None:
    _, conclave = _ask(client, "How many shipments are delayed at the moment?", data_access="rag")
    assert not any(c["source_id"].startswith("db:") for c in conclave.get("citations", [])), conclave
    with pytest.raises(openai.BadRequestError) as error:
        _ask(client, "How many shipments are delayed?", data_access="telepathy")
    assert "data_access" in str(error.value)


def test_embeddings_through_the_openai_client(client: openai.OpenAI) -> None:
    response = client.embeddings.create(model="minilm", input=["Annual leave is 25 days.", "Parking is free for staff."])
    assert response.model == "minilm"
    assert [item.index for item in response.data] == [0, 1]
    vector = response.data[0].embedding
    assert len(vector) == 384
    assert abs(sum(x * x for x in vector) - 1.0) < 1e-3
    assert response.usage.prompt_tokens > 0
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input="x")
