"""scripts/analysis.py on small report files with known numbers: figures are written, and the
correlations, k-means clusters, sensitivity and radar values are the ones the data imply."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT


def _levels(latencies: dict[int, float], throughput: dict[int, float]) -> list[dict]:
    return [{"level": users, "mean_ms": latencies[users], "p95_ms": latencies[users] * 2, "throughput": throughput[users],
             "availability": 1.0, "sent": 10, "errors": 0} for users in sorted(latencies)]


def test_analysis_of_known_numbers(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    runs = []
    for repetition in (1, 2, 3):
        # Latency grows exactly linearly with users for "slow"; "fast" and "faster" stay flat.
        runs.append({"configuration": "slow", "repetition": repetition,
                     "levels": _levels({1: 1000, 2: 2000, 4: 4000}, {1: 1.0, 2: 1.0, 4: 1.0})})
        runs.append({"configuration": "fast", "repetition": repetition,
                     "levels": _levels({1: 500, 2: 500 + repetition, 4: 500}, {1: 2.0, 2: 4.0, 4: 8.0})})
        runs.append({"configuration": "faster", "repetition": repetition,
                     "levels": _levels({1: 400, 2: 400 + repetition, 4: 400}, {1: 2.5, 2: 5.0, 4: 10.0})})
        # A sensitivity point: "slow" with one parameter changed, at 4 users only; latency 1.5×, a
        # quarter of its requests lost.
        variant = _levels({4: 6000}, {4: 0.5})
        variant[0]["availability"] = 0.75
        runs.append({"configuration": "slow-tight", "repetition": repetition, "levels": variant})
    configurations = [{"name": "slow-tight", "model": "m", "levels": [4],
                       "varies": {"parameter": "step timeouts", "of": "slow", "from": "60 s", "to": "4 s"}}]
    (reports / "table1-scalability.json").write_text(json.dumps({"name": "table1-scalability", "load": {"mode": "closed"},
                                                                 "configurations": configurations, "runs": runs}))
    quality_runs = [{"configuration": name, "repetition": 1, "summary": {
        "accuracy": {"value": accuracy}, "context_retention": {"value": 0.5}, "compliance": {"value": 1.0}}}
        for name, accuracy in (("slow", 0.9), ("fast", 0.3), ("faster", 0.3))]
    (reports / "table2-quality.json").write_text(json.dumps({"name": "table2-quality", "runs": quality_runs}))
    output = tmp_path / "analysis"
    run = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "analysis.py"), "--output", str(output), str(reports)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    for name in ("figure1-radar.png", "figure1-radar.svg", "figure2-latency.png", "figure2-latency.svg", "analysis.md"):
        assert (output / name).stat().st_size > 0, name
    result = json.loads((output / "analysis.json").read_text())
    slow = result["correlations"]["slow:mean_ms"]
    assert abs(slow["pearson"] - 1.0) < 1e-9 and abs(slow["spearman"] - 1.0) < 1e-9
    assert result["correlations"]["slow:throughput"]["pearson"] is None  # constant: undefined
    # The two flat, fast configurations cluster together, apart from the slow one.
    clusters = result["kmeans"]
    assert clusters["fast"] == clusters["faster"] != clusters["slow"]
    # Doubling the users doubles the slow configuration's latency.
    step = next(s for s in result["sensitivity"] if s["configuration"] == "slow" and s["from"] == 1)
    assert abs(step["latency_change"] - 1.0) < 1e-9
    # Radar: the fastest configuration at one user scores 1 on latency efficiency; quality is joined by name.
    radar = result["radar"]
    assert radar["faster"]["latency efficiency"] == 1.0
    assert abs(radar["slow"]["latency efficiency"] - 0.4) < 1e-9
    assert radar["slow"]["accuracy"] == 0.9 and radar["faster"]["throughput"] == 1.0
    # The sensitivity point is compared with its baseline at its one load, and kept out of the
    # radar, the clustering and the correlations.
    assert "slow-tight" not in radar and "slow-tight" not in clusters and "slow-tight:mean_ms" not in result["correlations"]
    point = next(s for s in result["sensitivity"] if s["parameter"] == "step timeouts")
    assert point["configuration"] == "slow@4" and point["from"] == "60 s" and point["to"] == "4 s"
    assert abs(point["latency_change"] - 0.5) < 1e-9 and abs(point["throughput_change"] + 0.5) < 1e-9
    assert point["availability"] == [1.0, 0.75]
    assert "| step timeouts | 60 s → 4 s | slow, 4 users | +50.0% | -50.0% | 100.0% → 75.0% |" in (output / "analysis.md").read_text()
