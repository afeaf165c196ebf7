#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (a separate SwiftPM package; libFuzzer + AddressSanitizer)
# and runs each one for SECONDS on a scratch copy of its seed corpus fuzz/corpus/<target>/, so a
# run never writes into the tree. Fails when a target crashes, leaks, times out or runs out of
# memory; the input that did it is kept under var/fuzz-crashes/<target>/ with the run's log.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (make fuzz: FUZZ_SECONDS, default 60; make test: 10)
#
# Reproduce a crash: fuzz/.build/debug/<target> var/fuzz-crashes/<target>/crash-<sha1>
# See docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
SECONDS_PER_TARGET="${1:-${FUZZ_SECONDS:-60}}"
shift || true
if (( $# )); then
    TARGETS=("$@")
else
    TARGETS=()
    for dir in fuzz/Sources/Fuzz*/; do
        name="$(basename "$dir")"
        [[ "$name" == FuzzSupport ]] || TARGETS+=("$name")
    done
fi

echo "== fuzz: building ${#TARGETS[@]} targets (-sanitize=fuzzer,address, fuzz/.build)"
# The fuzz package resolves on its own; start it from the versions the main build uses.
[[ -f fuzz/Package.resolved || ! -f Package.resolved ]] || cp Package.resolved fuzz/Package.resolved
# SwiftPM can keep the main package's old file list when a file was added there; a changed
# manifest here makes it plan the build again (no recompilation).
touch fuzz/Package.swift
started=$(date +%s)
build_log="$(mktemp "${TMPDIR:-/tmp}/conclave-fuzz-build.XXXXXX")"
build_status=0
nice -n 10 swift build --package-path fuzz -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
    >"$build_log" 2>&1 || build_status=$?
# The linker's notes about ASan's local symbols and the progress lines are noise; the rest is shown.
grep -v -e "Cannot export local symbol '__asan" -e "^\[[0-9]*/[0-9]*\]" "$build_log" || true
rm -f "$build_log"
(( build_status == 0 )) || { echo "fuzz: the build failed (exit $build_status)" >&2; exit 1; }
echo "fuzz: built in $(( $(date +%s) - started )) s"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/conclave-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# The Swift runtime's own crash reporter would stop at a crash before libFuzzer writes the input.
export SWIFT_BACKTRACE=enable=no
# No LeakSanitizer: Swift keeps enum tags in a reference's spare bits, so a live global (a Data in a
# static) looks unreferenced to it and is reported as a leak at exit (docs/reliability.md).
export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
failed=()
printf '%-18s %8s %10s %8s %7s %8s  %s\n' target seconds execs exec/s units rss_mb result
for target in "${TARGETS[@]}"; do
    binary="fuzz/.build/debug/$target"
    [[ -x "$binary" && -d "fuzz/corpus/$target" ]] || { echo "fuzz: no target or corpus named $target" >&2; exit 2; }
    run="$WORK/$target"
    mkdir -p "$run/corpus"
    cp -R "fuzz/corpus/$target/." "$run/corpus/"
    case "$target" in
        FuzzConfiguration|FuzzWorkflow|FuzzAccessPolicy|FuzzFrontMatter) dict=yaml ;;
        FuzzChatRequest|FuzzSSEStream|FuzzJWT) dict=json ;;
        FuzzSQLGuard) dict=sql ;;
        FuzzPII) dict=pii ;;
        *) dict=markup ;;
    esac
    status=0
    # -timeout: an input that runs this long is a finding (the SQL guard's own limit is 1 s).
    # -dict: tokens that byte mutations rarely produce (fuzz/dictionaries/).
    nice -n 10 "$binary" -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -detect_leaks=0 -print_final_stats=1 \
        -dict="fuzz/dictionaries/$dict.dict" -artifact_prefix="$run/" "$run/corpus" >"$run/log" 2>&1 || status=$?
    stat() { sed -n "s/^stat::$1: *//p" "$run/log" | tail -1; }
    units=$(find "$run/corpus" -type f | wc -l)
    result=ok
    artifacts=("$run"/crash-* "$run"/leak-* "$run"/timeout-* "$run"/oom-* "$run"/slow-unit-*)
    if (( status != 0 )) || compgen -G "$run/crash-*" >/dev/null || compgen -G "$run/oom-*" >/dev/null \
        || compgen -G "$run/timeout-*" >/dev/null || compgen -G "$run/leak-*" >/dev/null; then
        result="FAILED (exit $status)"
        kept="$ROOT/var/fuzz-crashes/$target"
        mkdir -p "$kept"
        for artifact in "${artifacts[@]}"; do [[ -e "$artifact" ]] && cp "$artifact" "$kept/"; done
        cp "$run/log" "$kept/$(date +%Y%m%dT%H%M%S).log"
        failed+=("$target")
    fi
    printf '%-18s %8s %10s %8s %7s %8s  %s\n' "$target" "$SECONDS_PER_TARGET" "$(stat number_of_executed_units)" \
        "$(stat average_exec_per_sec)" "$units" "$(stat peak_rss_mb)" "$result"
    if [[ "$result" != ok ]]; then
        grep -E "==fuzz==|ERROR: (libFuzzer|AddressSanitizer)|Fatal error|SUMMARY" "$run/log" | head -5 | sed 's/^/    /'
        echo "    input and log kept in var/fuzz-crashes/$target/"
    fi
done
if (( ${#failed[@]} )); then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
