#!/usr/bin/env python3
"""One-shot benchmark: Vectors (Swift) vs hnswlib and numpy on the same dataset.

Generates a deterministic clustered dataset (unit-norm float32), computes exact ground
truth, times numpy exact search (1 and 2 BLAS threads, per query and batched) and hnswlib
(build + ef sweep, 1 and 2 threads), runs the release-built `vector-bench` on the same
file (native kernels, and the portable Swift-SIMD kernels on the saved graph), and writes
one JSON report with all numbers and Swift/competitor ratios.

Usage:
  python3 -m venv .venv && .venv/bin/pip install -q hnswlib numpy
  .venv/bin/python scripts/bench_vectors.py --out bench-out/results.json
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # bench/vectors/ -> repository root


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def generate(args):
    import numpy as np
    rng = np.random.default_rng(args.seed)
    d = args.dim
    centers = rng.standard_normal((args.clusters, d), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)

    def sample(count):
        out = np.empty((count, d), dtype=np.float32)
        for s in range(0, count, 20000):
            e = min(count, s + 20000)
            labels = rng.integers(0, args.clusters, size=e - s)
            noise = rng.standard_normal((e - s, d), dtype=np.float32) * np.float32(args.spread / np.sqrt(d))
            x = centers[labels] + noise
            out[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    base = sample(args.n)
    queries = sample(args.queries)
    return base, queries


def ground_truth(base, queries, k):
    import numpy as np
    gt = np.empty((len(queries), k), dtype=np.int32)
    for s in range(0, len(queries), 512):
        scores = queries[s:s + 512] @ base.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        ps = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-ps, axis=1)
        gt[s:s + 512] = np.take_along_axis(part, order, axis=1)
    return gt


def write_dataset(path, base, queries, gt):
    with open(path, "wb") as f:
        f.write(b"VBENCH01")
        f.write(struct.pack("<4I", base.shape[1], base.shape[0], queries.shape[0], gt.shape[1]))
        f.write(base.astype("<f4").tobytes())
        f.write(queries.astype("<f4").tobytes())
        f.write(gt.astype("<i4").tobytes())


def read_dataset(path):
    import numpy as np
    with open(path, "rb") as f:
        assert f.read(8) == b"VBENCH01"
        d, n, nq, gk = struct.unpack("<4I", f.read(16))
        base = np.frombuffer(f.read(n * d * 4), dtype="<f4").reshape(n, d)
        queries = np.frombuffer(f.read(nq * d * 4), dtype="<f4").reshape(nq, d)
        gt = np.frombuffer(f.read(nq * gk * 4), dtype="<i4").reshape(nq, gk)
    return base, queries, gt


def recall(found, gt, k):
    hits = 0
    for row, truth in zip(found, gt):
        hits += len(set(int(x) for x in row[:k]) & set(int(x) for x in truth[:k]))
    return hits / (len(found) * k)


def numpy_worker(args):
    """Runs in a subprocess so that the BLAS thread count is fixed before numpy loads."""
    import numpy as np
    base, queries, gt = read_dataset(args.data)
    base = np.ascontiguousarray(base)
    k = args.k
    nq = min(args.exact_queries, len(queries))
    qs = np.ascontiguousarray(queries[:nq])

    def per_query():
        res = []
        for q in qs:
            scores = base @ q
            idx = np.argpartition(-scores, k)[:k]
            res.append(idx[np.argsort(-scores[idx])])
        return res

    def batched():
        res = []
        for s in range(0, nq, 256):
            scores = qs[s:s + 256] @ base.T
            idx = np.argpartition(-scores, k, axis=1)[:, :k]
            ps = np.take_along_axis(scores, idx, axis=1)
            res.extend(np.take_along_axis(idx, np.argsort(-ps, axis=1), axis=1))
        return res

    out = {"blas_threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0")), "queries": nq}
    for name, fn in (("per_query", per_query), ("batched", batched)):
        best, best_cpu, found = float("inf"), float("inf"), None
        for _ in range(args.repeats):
            c, t = time.process_time(), time.perf_counter()
            found = fn()
            best = min(best, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
        out[name] = {"qps": nq / best, "qps_cpu": nq * out["blas_threads"] / best_cpu,
                     "recall": recall(found, gt, k)}
    out["batched"]["batch"] = 256
    json.dump(out, sys.stdout)


def run_numpy(args, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--numpy-worker", "--data", args.data,
           "--k", str(args.k), "--exact-queries", str(args.exact_queries), "--repeats", str(args.repeats)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def build_hnswlib(args, base, threads):
    import hnswlib
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), ef_construction=args.ef_construction, M=args.m, random_seed=42)
    c, t = time.thread_time(), time.perf_counter()
    index.add_items(base, list(range(len(base))), num_threads=threads)
    return index, time.perf_counter() - t, time.thread_time() - c


def sweep_hnswlib(args, index, queries, gt):
    sweep = []
    for ef in args.ef:
        index.set_ef(ef)
        for threads in args.threads:
            best, best_cpu, labels = float("inf"), float("inf"), None
            for _ in range(args.repeats):
                # num_threads=1 runs inline in this thread, so thread_time is its CPU time;
                # for more threads process_time covers the worker threads.
                clock = time.thread_time if threads == 1 else time.process_time
                c, t = clock(), time.perf_counter()
                labels, _ = index.knn_query(queries, k=args.k, num_threads=threads)
                best = min(best, time.perf_counter() - t)
                best_cpu = min(best_cpu, clock() - c)
            r = recall(labels, gt, args.k)
            log(f"hnswlib ef={ef} threads={threads}: recall@{args.k}={r:.4f} qps={len(queries) / best:.0f}")
            sweep.append({"ef": ef, "threads": threads, "recall": r, "qps": len(queries) / best,
                          "qps_cpu": len(queries) * threads / best_cpu})
    return sweep


def run_swift(args, extra, env_extra=None, tag="swift"):
    out_json = os.path.join(args.workdir, f"{tag}.json")
    cmd = [args.swift_bin, "--data", args.data, "--out", out_json, "--m", str(args.m),
           "--ef-construction", str(args.ef_construction), "--ef", ",".join(map(str, args.ef)),
           "--threads", ",".join(map(str, args.threads)), "--k", str(args.k),
           "--exact-queries", str(args.exact_queries), "--repeats", str(args.repeats)] + extra
    env = dict(os.environ, **(env_extra or {}))
    subprocess.run(cmd, env=env, check=True)
    with open(out_json) as f:
        return json.load(f)


def merge_best(cells, new, key=("ef", "threads")):
    """Keeps, per (ef, threads) cell, the round with the highest wall-clock q/s."""
    by = {tuple(c[k] for k in key): c for c in cells}
    for c in new:
        kk = tuple(c[k] for k in key)
        old = by.get(kk)
        if old is None or c["qps"] > old["qps"]:
            merged = dict(c)
            if old is not None:
                merged["qps_cpu"] = max(c.get("qps_cpu", 0), old.get("qps_cpu", 0))
            by[kk] = merged
        elif c.get("qps_cpu", 0) > old.get("qps_cpu", 0):
            old["qps_cpu"] = c["qps_cpu"]
    return [by[k] for k in sorted(by)]


def merge_exact(old, new):
    """Per thread count and mode, keeps the round with the highest wall-clock q/s."""
    if old is None:
        return new
    for key, modes in new.items():
        if not (isinstance(modes, dict) and key.startswith("threads_")):
            continue
        for mode, v in modes.items():
            o = old.setdefault(key, {}).get(mode)
            if o is None or v["qps"] > o["qps"]:
                old[key][mode] = dict(v, qps_cpu=max(v["qps_cpu"], (o or {}).get("qps_cpu", 0)))
            else:
                o["qps_cpu"] = max(o["qps_cpu"], v["qps_cpu"])
    return old


def merge_numpy(old, new):
    if old is None:
        return new
    for mode in ("per_query", "batched"):
        if new[mode]["qps"] > old[mode]["qps"]:
            cpu = max(new[mode]["qps_cpu"], old[mode]["qps_cpu"])
            old[mode] = dict(new[mode], qps_cpu=cpu)
        else:
            old[mode]["qps_cpu"] = max(new[mode]["qps_cpu"], old[mode]["qps_cpu"])
    return old


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="JSON report path")
    p.add_argument("--workdir", default=os.path.join(ROOT, "var", "bench-vectors"))
    p.add_argument("--data", help="dataset path (default: WORKDIR/dataset.bin)")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--spread", type=float, default=1.0, help="noise norm relative to the unit cluster centre")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--ef", type=lambda s: [int(x) for x in s.split(",")], default=[10, 20, 40, 80])
    p.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    p.add_argument("--exact-queries", type=int, default=200)
    p.add_argument("--repeats", type=int, default=2, help="timed repeats per cell per round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds")
    p.add_argument("--swift-bin", default=os.path.join(ROOT, ".build", "release", "vector-bench"))
    p.add_argument("--skip-build", action="store_true", help="do not run `swift build -c release` first")
    p.add_argument("--skip-portable", action="store_true", help="skip the portable Swift-SIMD kernel pass")
    p.add_argument("--hnswlib-parallel-build", action="store_true", help="also time hnswlib build with 2 threads")
    p.add_argument("--numpy-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.numpy_worker:
        numpy_worker(args)
        return
    if not args.out:
        p.error("--out is required")
    os.makedirs(args.workdir, exist_ok=True)
    args.data = args.data or os.path.join(args.workdir, "dataset.bin")

    if not args.skip_build:
        log("building vector-bench (swift build -c release -j 2)...")
        t = time.perf_counter()
        subprocess.run(["swift", "build", "-c", "release", "-j", "2", "--product", "vector-bench"], cwd=ROOT, check=True)
        log(f"  build took {time.perf_counter() - t:.1f}s")

    t = time.perf_counter()
    base, queries = generate(args)
    gt = ground_truth(base, queries, args.k)
    write_dataset(args.data, base, queries, gt)
    log(f"dataset: n={args.n} queries={args.queries} dim={args.dim} clusters={args.clusters} "
        f"spread={args.spread} ({time.perf_counter() - t:.1f}s)")

    report = {"dataset": {"n": args.n, "queries": args.queries, "dim": args.dim, "clusters": args.clusters,
                          "spread": args.spread, "seed": args.seed, "k": args.k, "path": args.data},
              "machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
              "method": ("builds run once, single-threaded, one after the other; search timings are the best "
                         f"of {args.rounds} interleaved rounds (numpy, hnswlib, Swift in turn) x {args.repeats} "
                         "repeats; qps = wall clock, qps_cpu = queries per CPU-second x threads")}

    # --- builds (1 thread each) ---
    import hnswlib
    hl_index, hl_wall, hl_cpu = build_hnswlib(args, base, 1)
    log(f"hnswlib: built in {hl_wall:.1f}s (cpu {hl_cpu:.1f}s, 1 thread)")
    try:
        from importlib.metadata import version as _pkg_version
        hl_version = _pkg_version("hnswlib")
    except Exception:
        hl_version = getattr(hnswlib, "__version__", "unknown")
    report["hnswlib"] = {"version": hl_version, "numpy_version": __import__("numpy").__version__, "m": args.m,
                         "ef_construction": args.ef_construction, "build_seconds": hl_wall,
                         "build_cpu_seconds": hl_cpu, "build_threads": 1}
    if args.hnswlib_parallel_build:
        _, wall2, _ = build_hnswlib(args, base, 2)
        report["hnswlib"]["build_seconds_2_threads"] = wall2
    index_path = os.path.join(args.workdir, "hnsw.idx")
    swift_build = run_swift(args, ["--index-path", index_path, "--skip-exact", "--ef", str(args.ef[0]),
                                   "--threads", "1", "--repeats", "1"], tag="swift-build")
    log(f"swift: built in {swift_build['hnsw']['build_seconds']:.1f}s")

    # --- interleaved search rounds ---
    numpy_res = {1: None, 2: None}
    hl_sweep, sw_sweep, sw_exact, sw_meta = [], [], None, None
    for rnd in range(args.rounds):
        log(f"--- round {rnd + 1}/{args.rounds} (loadavg {os.getloadavg()[0]:.2f}) ---")
        for t in (1, 2):
            numpy_res[t] = merge_numpy(numpy_res[t], run_numpy(args, t))
        hl_sweep = merge_best(hl_sweep, sweep_hnswlib(args, hl_index, queries, gt))
        sw = run_swift(args, ["--load-index", index_path], tag=f"swift-round{rnd + 1}")
        sw_sweep = merge_best(sw_sweep, sw["hnsw"]["sweep"])
        sw_exact = merge_exact(sw_exact, sw["exact"])
        sw_meta = sw
    report["numpy"] = {"threads_1": numpy_res[1], "threads_2": numpy_res[2]}
    report["hnswlib"]["sweep"] = hl_sweep
    report["swift"] = {"kernel": sw_meta["kernel"],
                       "hnsw": dict(swift_build["hnsw"], sweep=sw_sweep, load_seconds=sw_meta["hnsw"].get("load_seconds")),
                       "exact": sw_exact}
    del hl_index, base, queries
    if not args.skip_portable:
        report["swift_portable"] = run_swift(args, ["--load-index", index_path],
                                             {"VECTORS_KERNEL": "portable"}, tag="swift-portable")
    report["machine"]["loadavg_end"] = os.getloadavg()

    # Ratios (Swift / competitor) for matching cells, wall clock and CPU-time based.
    ratios = {"hnsw_qps_swift_over_hnswlib": {}, "hnsw_cpu_qps_swift_over_hnswlib": {},
              "exact_qps_swift_over_numpy": {}, "exact_cpu_qps_swift_over_numpy": {}}
    hl = {(c["ef"], c["threads"]): c for c in report["hnswlib"]["sweep"]}
    for c in report["swift"]["hnsw"]["sweep"]:
        h = hl.get((c["ef"], c["threads"]))
        if h:
            key = f"ef{c['ef']}_t{c['threads']}"
            ratios["hnsw_qps_swift_over_hnswlib"][key] = c["qps"] / h["qps"]
            ratios["hnsw_cpu_qps_swift_over_hnswlib"][key] = c["qps_cpu"] / h["qps_cpu"]
    ratios["hnsw_build_time_swift_over_hnswlib"] = (
        report["swift"]["hnsw"]["build_seconds"] / report["hnswlib"]["build_seconds"])
    ratios["hnsw_build_cpu_time_swift_over_hnswlib"] = (
        report["swift"]["hnsw"]["build_cpu_seconds"] / report["hnswlib"]["build_cpu_seconds"])
    for t in args.threads:
        key = f"threads_{t}"
        sw = report["swift"]["exact"].get(key)
        npy = report["numpy"].get(key)
        if sw and npy:
            for mode in ("per_query", "batched"):
                ratios["exact_qps_swift_over_numpy"][f"t{t}_{mode}"] = sw[mode]["qps"] / npy[mode]["qps"]
                ratios["exact_cpu_qps_swift_over_numpy"][f"t{t}_{mode}"] = sw[mode]["qps_cpu"] / npy[mode]["qps_cpu"]
    report["ratios"] = ratios
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print_table(report)
    log(f"wrote {args.out}")


def print_table(r):
    hl = {(c["ef"], c["threads"]): c for c in r["hnswlib"]["sweep"]}
    pt = {}
    if "swift_portable" in r:
        pt = {(c["ef"], c["threads"]): c for c in r["swift_portable"]["hnsw"]["sweep"]}
    sh, hh = r["swift"]["hnsw"], r["hnswlib"]
    print(f"HNSW n={r['dataset']['n']} M={hh['m']} efC={hh['ef_construction']} kernel={r['swift']['kernel']}")
    print(f"build (1 thread): Swift {sh['build_seconds']:.1f}s wall / {sh['build_cpu_seconds']:.1f}s cpu; "
          f"hnswlib {hh['build_seconds']:.1f}s wall / {hh['build_cpu_seconds']:.1f}s cpu")
    print("| ef | threads | Swift recall@10 | Swift q/s | Swift q/s (cpu) | hnswlib recall@10 | hnswlib q/s "
          "| hnswlib q/s (cpu) | ratio wall | ratio cpu | Swift portable q/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in sh["sweep"]:
        h = hl.get((c["ef"], c["threads"]), {"recall": 0, "qps": 1, "qps_cpu": 1})
        p = pt.get((c["ef"], c["threads"]), {})
        print(f"| {c['ef']} | {c['threads']} | {c['recall']:.4f} | {c['qps']:.0f} | {c['qps_cpu']:.0f} | "
              f"{h['recall']:.4f} | {h['qps']:.0f} | {h['qps_cpu']:.0f} | {c['qps'] / h['qps']:.2f}x | "
              f"{c['qps_cpu'] / h['qps_cpu']:.2f}x | {p.get('qps', 0):.0f} |")
    print(f"Exact top-{r['dataset']['k']} over {r['dataset']['n']} vectors, q/s wall (cpu-based):")
    print("| threads | mode | Swift | numpy | ratio wall | ratio cpu | Swift portable |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for t in (1, 2):
        key = f"threads_{t}"
        if key not in r["swift"]["exact"]:
            continue
        for mode in ("per_query", "batched"):
            sw = r["swift"]["exact"][key][mode]
            npy = r["numpy"][key][mode]
            port = r.get("swift_portable", {}).get("exact", {}).get(key, {}).get(mode, {}).get("qps", 0)
            print(f"| {t} | {mode} | {sw['qps']:.0f} ({sw['qps_cpu']:.0f}) | {npy['qps']:.0f} ({npy['qps_cpu']:.0f}) | "
                  f"{sw['qps'] / npy['qps']:.2f}x | {sw['qps_cpu'] / npy['qps_cpu']:.2f}x | {port:.0f} |")


if __name__ == "__main__":
    main()
