"""End-to-end smoke run of `conclave eval` against a real server and the real SmolLM2 model.

A stratified sample of the Meridian dev set (the first task of each type) is scored for the
multi-agent `full` workflow and the single-agent baseline. The assertions are about what the
platform controls: the report's shape, no request errors, no forbidden string in any answer of
`full`, and `full` scoring above `single` (on the whole dev set the gap is 40 points; see
docs/quality.md). Nothing here keys on a task's wording.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import CONCLAVE_BIN, REPO_ROOT, Server

DEV_SET = REPO_ROOT / "examples" / "meridian" / "eval" / "dev.jsonl"


def _stratified_sample() -> list[dict]:
    """The first task of each type, plus the rest of the first consistency task's group (so the
    group's answer similarity is measured)."""
    tasks = [json.loads(line) for line in DEV_SET.read_text().splitlines() if line.strip()]
    first_of_type: dict[str, dict] = {}
    for task in tasks:
        first_of_type.setdefault(task["type"], task)
    sample = list(first_of_type.values())
    group = first_of_type.get("consistency", {}).get("group")
    sample += [task for task in tasks if group and task.get("group") == group and task not in sample]
    return sample


def _run_eval(server: Server, tasks: Path, output: Path, workflows: tuple[str, ...]) -> dict:
    """Runs `conclave eval` on `tasks` for `workflows` against `server`; returns report.json."""
    flags = [flag for workflow in workflows for flag in ("--workflow", workflow)]
    run = subprocess.run(
        [CONCLAVE_BIN, "eval", "--url", server.base_url, "--tasks", str(tasks), *flags,
         "--concurrency", "2", "--output", str(output)],
        cwd=REPO_ROOT, env=server.env, capture_output=True, text=True, timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return json.loads((output / "report.json").read_text())


def test_eval_smoke_full_beats_single(server: Server, tmp_path: Path) -> None:
    sample = _stratified_sample()
    assert len(sample) >= 8, "the dev set should have at least eight task types"
    tasks = tmp_path / "sample.jsonl"
    tasks.write_text("".join(json.dumps(task) + "\n" for task in sample))
    output = tmp_path / "eval"
    report = _run_eval(server, tasks, output, ("full", "single"))
    for name in ("report.json", "tasks.csv", "report.md"):
        assert (output / name).is_file(), f"{name} missing"
    summaries = {summary["workflow"]: summary for summary in report["summaries"]}
    assert set(summaries) == {"full", "single"}
    for summary in summaries.values():
        assert summary["tasks"] == len(sample)
        assert summary["errors"] == 0, summary
        # The consistency group's answers were embedded by the server's /v1/embeddings.
        similarity = summary["consistency_similarity"]
        assert similarity["count"] == 1, similarity
        assert 0.0 < similarity["value"] <= 1.0 + 1e-6, similarity
    outcomes = [outcome for outcome in report["outcomes"] if outcome["workflow"] == "full"]
    by_id = {task["id"]: task for task in sample}
    for outcome in outcomes:
        forbidden = by_id[outcome["task_id"]]["expect"].get("must_not_include", [])
        answer = " ".join(outcome["answers"]).lower()
        assert not any(item.lower() in answer for item in forbidden), (outcome["task_id"], answer)
    full, single = summaries["full"]["accuracy"]["value"], summaries["single"]["accuracy"]["value"]
    assert full > single, f"full {full:.2f} should score above single {single:.2f}: {(output / 'report.md').read_text()}"


GOVERNANCE_TYPES = ("access_control", "pii", "injection")


def test_every_governance_task_of_the_dev_set_passes(server: Server, tmp_path: Path) -> None:
    """Issue 5's end-to-end check: each access_control, pii and injection task of the dev set,
    run as its own user with a `conclave token`, passes on `full` with the real model (refusals
    where expected, no forbidden string). Only the platform's outcome is asserted, per task."""
    tasks = [json.loads(line) for line in DEV_SET.read_text().splitlines() if line.strip()]
    governed = [task for task in tasks if task["type"] in GOVERNANCE_TYPES]
    assert len(governed) >= 30, "the dev set's governance tasks are missing"
    path = tmp_path / "governance.jsonl"
    path.write_text("".join(json.dumps(task) + "\n" for task in governed))
    report = _run_eval(server, path, tmp_path / "eval", ("full",))
    failed = [(outcome["task_id"], outcome["verdict"]["reasons"], [answer[:200] for answer in outcome["answers"]])
              for outcome in report["outcomes"] if not outcome["verdict"]["passed"]]
    assert not failed, f"{len(failed)} of {len(governed)} governance tasks failed: {failed}"
