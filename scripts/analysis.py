#!/usr/bin/env python3
"""The study's figures and analysis, from the JSON that `conclave study` writes.

Usage: analysis.py --output DIR REPORT_DIR [REPORT_DIR ...]

Each table is read from the last REPORT_DIR that holds it (table1-scalability.json,
table2-quality.json, table3-governance.json), so one `make study` directory or several partial
ones both work. Writes into DIR:

- figure1-radar.png/.svg: each Table 1 configuration on six axes, normalised to 0..1 (see
  docs/evaluation.md, "Figures and analysis", for the normalisation);
- figure2-latency.png/.svg: mean latency against concurrent users per configuration, with the
  repetitions' range as error bars;
- analysis.md and analysis.json: descriptive statistics, Pearson and Spearman correlations between
  users and latency/throughput, k-means clustering of the configurations, and a one-at-a-time
  sensitivity analysis: users (Table 1's levels), replicas and step timeouts (Table 1's
  configurations that declare `varies`, each against its baseline at the same load), and the
  governance mode (Table 3).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

# The workflow a Table 1 configuration runs, to join it with Table 2's quality per workflow.
WORKFLOW_OF = {"single-fixed": "single", "multi-fixed": "full", "multi-autoscaled": "full"}
RADAR_AXES = ["latency efficiency", "throughput", "accuracy", "coordination", "governance readiness", "fault tolerance"]


def load_tables(directories: list[Path]) -> dict[str, dict]:
    tables: dict[str, dict] = {}
    for directory in directories:
        for name in ("table1-scalability", "table2-quality", "table3-governance"):
            path = directory / f"{name}.json"
            if path.is_file():
                tables[name] = json.loads(path.read_text())
    return tables


def load_points(table: dict) -> dict[str, dict[float, list[dict]]]:
    """configuration -> level -> the level results of every repetition."""
    points: dict[str, dict[float, list[dict]]] = {}
    for run in table["runs"]:
        for level in run["levels"]:
            points.setdefault(run["configuration"], {}).setdefault(float(level["level"]), []).append(level)
    return points


def variations(table: dict) -> dict[str, dict]:
    """configuration -> its `varies` entry (parameter, of, from, to), for the sensitivity points."""
    return {c["name"]: c["varies"] for c in table.get("configurations", []) if c.get("varies")}


def change(baseline: list[dict], variant: list[dict], metric: str) -> float:
    """Relative change of the mean of `metric` from the baseline's repetitions to the variant's."""
    a = np.mean([r[metric] for r in baseline])
    b = np.mean([r[metric] for r in variant])
    return float(b / a - 1) if a else math.nan


def availabilities(before: list[dict], after: list[dict]) -> list[float]:
    """Mean availability (answered ÷ sent) over the repetitions, before and after a change."""
    return [float(np.mean([r["availability"] for r in before])), float(np.mean([r["availability"] for r in after]))]


def fmt_availability(entry: dict) -> str:
    before, after = entry["availability"]
    return f"{before:.1%}" if before == after else f"{before:.1%} → {after:.1%}"


def quality_by_configuration(table: dict) -> dict[str, dict[str, float]]:
    """configuration -> mean over repetitions of accuracy, context retention and compliance."""
    out: dict[str, dict[str, list[float]]] = {}
    for run in table["runs"]:
        summary = run["summary"]
        values = out.setdefault(run["configuration"], {"accuracy": [], "context_retention": [], "compliance": []})
        for key in values:
            values[key].append(summary[key]["value"])
    return {name: {key: float(np.mean(v)) for key, v in values.items()} for name, values in out.items()}


def describe(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    return {"n": int(array.size), "mean": float(array.mean()), "sd": float(array.std(ddof=1)) if array.size > 1 else 0.0,
            "min": float(array.min()), "max": float(array.max())}


def correlations(points: dict[float, list[dict]], metric: str) -> dict[str, float | None]:
    """Pearson and Spearman correlation between the load level and `metric`, over every repetition."""
    x = [level for level, results in points.items() for _ in results]
    y = [result[metric] for results in points.values() for result in results]
    if len(set(x)) < 2 or len(set(y)) < 2:
        return {"pearson": None, "pearson_p": None, "spearman": None, "spearman_p": None}
    pearson = stats.pearsonr(x, y)
    spearman = stats.spearmanr(x, y)
    return {"pearson": float(pearson.statistic), "pearson_p": float(pearson.pvalue),
            "spearman": float(spearman.statistic), "spearman_p": float(spearman.pvalue)}


def radar_scores(points: dict[str, dict[float, list[dict]]], quality: dict[str, dict[str, float]]) -> dict[str, list[float]]:
    """Each configuration's six radar values in 0..1 (normalisation in docs/evaluation.md)."""
    top = max(max(levels) for levels in points.values())
    latency_at_one = {c: np.mean([r["mean_ms"] for r in points[c][min(points[c])]]) for c in points}
    throughput_at_top = {c: np.mean([r["throughput"] for r in points[c].get(top, [])] or [0]) for c in points}
    best_latency = min(latency_at_one.values())
    best_throughput = max(throughput_at_top.values()) or 1
    scores: dict[str, list[float]] = {}
    for configuration in points:
        q = quality.get(WORKFLOW_OF.get(configuration, configuration), {})
        availability = np.mean([r["availability"] for levels in points[configuration].values() for r in levels])
        scores[configuration] = [
            float(best_latency / latency_at_one[configuration]),
            float(throughput_at_top[configuration] / best_throughput),
            float(q.get("accuracy", math.nan)),
            float(q.get("context_retention", math.nan)),
            float(q.get("compliance", math.nan)),
            float(availability),
        ]
    return scores


def save(figure, output: Path, name: str) -> list[str]:
    files = []
    for extension in ("png", "svg"):
        path = output / f"{name}.{extension}"
        figure.savefig(path, dpi=150 if extension == "png" else None, bbox_inches="tight")
        files.append(path.name)
    plt.close(figure)
    return files


def figure_latency(points: dict[str, dict[float, list[dict]]], output: Path, unit: str) -> list[str]:
    figure, axis = plt.subplots(figsize=(6, 4))
    for configuration, levels in points.items():
        xs = sorted(levels)
        means = [np.mean([r["mean_ms"] / 1000 for r in levels[x]]) for x in xs]
        # The repetitions' range around the mean (clamped: equal values leave rounding noise).
        lows = [max(0.0, m - min(r["mean_ms"] / 1000 for r in levels[x])) for m, x in zip(means, xs)]
        highs = [max(0.0, max(r["mean_ms"] / 1000 for r in levels[x]) - m) for m, x in zip(means, xs)]
        axis.errorbar(xs, means, yerr=[lows, highs], marker="o", capsize=3, label=configuration)
    axis.set_xlabel(f"concurrent {unit}")
    axis.set_ylabel("mean latency (s)")
    axis.set_title("Figure 2: latency against load")
    axis.grid(alpha=0.3)
    axis.legend()
    return save(figure, output, "figure2-latency")


def figure_radar(scores: dict[str, list[float]], output: Path) -> list[str]:
    angles = np.linspace(0, 2 * np.pi, len(RADAR_AXES), endpoint=False).tolist()
    figure = plt.figure(figsize=(6, 6))
    axis = figure.add_subplot(polar=True)
    for configuration, values in scores.items():
        closed = [0 if math.isnan(v) else v for v in values]
        axis.plot(angles + angles[:1], closed + closed[:1], marker="o", label=configuration)
        axis.fill(angles + angles[:1], closed + closed[:1], alpha=0.1)
    axis.set_xticks(angles)
    axis.set_xticklabels(RADAR_AXES)
    axis.set_ylim(0, 1)
    axis.set_title("Figure 1: configurations on six axes (0..1)")
    axis.legend(loc="lower right", bbox_to_anchor=(1.3, -0.1))
    return save(figure, output, "figure1-radar")


def kmeans(points: dict[str, dict[float, list[dict]]], seed: int = 42) -> dict[str, int]:
    """Clusters configurations by their (mean latency, throughput) profile over the load levels."""
    names = sorted(points)
    levels = sorted(set.intersection(*(set(points[n]) for n in names)))
    if len(names) < 3 or not levels:
        return {name: 0 for name in names}
    rows = [[np.mean([r[m] for r in points[n][x]]) for x in levels for m in ("mean_ms", "throughput")] for n in names]
    features = StandardScaler().fit_transform(np.asarray(rows))
    labels = KMeans(n_clusters=2, n_init=10, random_state=seed).fit_predict(features)
    return {name: int(label) for name, label in zip(names, labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    tables = load_tables(args.reports)
    result: dict = {"tables": sorted(tables), "figures": []}
    md = ["# Figures and analysis", "", "Sources: " + ", ".join(f"`{t}`" for t in sorted(tables)) + ".", ""]

    table1 = tables.get("table1-scalability")
    quality = quality_by_configuration(tables["table2-quality"]) if "table2-quality" in tables else {}
    if table1:
        points = load_points(table1)
        # The sensitivity points run at one load each: kept out of the figures, the correlations and
        # the clustering, compared with their baseline below.
        varied = variations(table1)
        variants = {c: points.pop(c) for c in varied if c in points}
        unit = "users" if table1.get("load", {}).get("mode", "closed") == "closed" else "req/s"
        result["figures"] += figure_latency(points, args.output, unit)
        scores = radar_scores(points, quality)
        result["figures"] += figure_radar(scores, args.output)
        result["radar"] = {c: dict(zip(RADAR_AXES, v)) for c, v in scores.items()}
        md += ["## Figure 1: radar (0..1)", "", "| configuration | " + " | ".join(RADAR_AXES) + " |",
               "|---" * (len(RADAR_AXES) + 1) + "|"]
        for configuration, values in scores.items():
            md.append(f"| {configuration} | " + " | ".join("n/a" if math.isnan(v) else f"{v:.2f}" for v in values) + " |")
        md += ["", "## Descriptive statistics (Table 1, over repetitions)", "",
               f"| configuration | {unit} | mean latency (s): mean ± sd [min–max] | throughput (req/s): mean ± sd |", "|---|---|---|---|"]
        result["descriptive"] = {}
        for configuration, levels in points.items():
            for level in sorted(levels):
                latency = describe([r["mean_ms"] / 1000 for r in levels[level]])
                throughput = describe([r["throughput"] for r in levels[level]])
                result["descriptive"][f"{configuration}@{level:g}"] = {"latency_s": latency, "throughput": throughput}
                md.append(f"| {configuration} | {level:g} | {latency['mean']:.2f} ± {latency['sd']:.2f} "
                          f"[{latency['min']:.2f}–{latency['max']:.2f}] | {throughput['mean']:.3f} ± {throughput['sd']:.3f} |")
        md += ["", f"## Correlations with the number of {unit} (every repetition)", "",
               "| configuration | metric | Pearson r (p) | Spearman ρ (p) |", "|---|---|---|---|"]
        result["correlations"] = {}
        for configuration, levels in points.items():
            for metric in ("mean_ms", "throughput"):
                c = correlations(levels, metric)
                result["correlations"][f"{configuration}:{metric}"] = c
                fmt = (lambda v, p: "n/a" if v is None else f"{v:.2f} ({p:.3f})")
                md.append(f"| {configuration} | {metric} | {fmt(c['pearson'], c['pearson_p'])} | {fmt(c['spearman'], c['spearman_p'])} |")
        clusters = kmeans(points)
        result["kmeans"] = clusters
        md += ["", "## k-means (k = 2) over the configurations' latency and throughput profiles", "",
               "| configuration | cluster |", "|---|---|"] + [f"| {n} | {k} |" for n, k in clusters.items()]
        md += ["", "## Sensitivity: one parameter at a time", "", "| parameter | from → to | configuration | mean latency change | throughput change | availability |",
               "|---|---|---|---|---|---|"]
        result["sensitivity"] = []
        for configuration, levels in points.items():
            xs = sorted(levels)
            for a, b in zip(xs, xs[1:]):
                entry = {"parameter": unit, "from": a, "to": b, "configuration": configuration,
                         "latency_change": change(levels[a], levels[b], "mean_ms"),
                         "throughput_change": change(levels[a], levels[b], "throughput"),
                         "availability": availabilities(levels[a], levels[b])}
                result["sensitivity"].append(entry)
                md.append(f"| {unit} | {a:g} → {b:g} | {configuration} | {entry['latency_change']:+.1%} | {entry['throughput_change']:+.1%} | "
                          f"{fmt_availability(entry)} |")
        for configuration, variation in varied.items():
            baseline = points.get(variation["of"], {})
            for level in sorted(variants.get(configuration, {})):
                if level not in baseline:
                    continue
                mine = variants[configuration][level]
                entry = {"parameter": variation["parameter"], "from": variation["from"], "to": variation["to"],
                         "configuration": f"{variation['of']}@{level:g}",
                         "latency_change": change(baseline[level], mine, "mean_ms"),
                         "p95_change": change(baseline[level], mine, "p95_ms"),
                         "throughput_change": change(baseline[level], mine, "throughput"),
                         "availability": availabilities(baseline[level], mine)}
                result["sensitivity"].append(entry)
                md.append(f"| {variation['parameter']} | {variation['from']} → {variation['to']} | {variation['of']}, {level:g} {unit} | "
                          f"{entry['latency_change']:+.1%} | {entry['throughput_change']:+.1%} | {fmt_availability(entry)} |")
    table3 = tables.get("table3-governance")
    if table3:
        modes = load_points(table3)
        baseline = modes.get("off")
        if baseline:
            for mode, levels in modes.items():
                for level in sorted(levels):
                    if mode == "off" or level not in baseline:
                        continue
                    entry = {"parameter": "governance.mode", "from": "off", "to": mode, "configuration": f"full@{level:g}",
                             "latency_change": change(baseline[level], levels[level], "mean_ms"),
                             "throughput_change": change(baseline[level], levels[level], "throughput"),
                             "availability": availabilities(baseline[level], levels[level])}
                    result.setdefault("sensitivity", []).append(entry)
                    md.append(f"| governance.mode | off → {mode} | full, {level:g} users | {entry['latency_change']:+.1%} | "
                              f"{entry['throughput_change']:+.1%} | {fmt_availability(entry)} |")
    if quality:
        md += ["", "## Quality per workflow (Table 2, mean over repetitions)", "",
               "| workflow | accuracy | context retention | compliance |", "|---|---|---|---|"]
        md += [f"| {n} | {q['accuracy']:.1%} | {q['context_retention']:.2f} | {q['compliance']:.1%} |" for n, q in quality.items()]
        result["quality"] = quality
    md += ["", "Figures: " + ", ".join(result["figures"]) if result["figures"] else "No Table 1: no figures.", ""]
    (args.output / "analysis.md").write_text("\n".join(md))
    (args.output / "analysis.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    print(f"analysis: wrote {args.output}/analysis.md and {len(result['figures'])} figure files")


if __name__ == "__main__":
    main()
