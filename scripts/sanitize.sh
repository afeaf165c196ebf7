#!/usr/bin/env bash
# The Swift unit tests (IntegrationTests excluded) under AddressSanitizer, then under
# ThreadSanitizer, each in its own build directory (.build/asan, .build/tsan) so that neither
# disturbs the main debug build. Called by `make test-sanitize`; not part of `make test` (each
# sanitizer build of the whole graph takes 8 to 10 minutes on 2 cores). Results and the reasons
# for the suppression files in scripts/sanitizers/: docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Swift runtime's crash reporter would run before the sanitizer prints its report.
export SWIFT_BACKTRACE=enable=no
# One test at a time: run in parallel under a sanitizer, the tests that bound a duration (a step
# timeout, a connect timeout, a drain) starve on 2 cores and miss their bounds.
status=0
echo "== swift test --sanitize=address (unit tests, one at a time)"
LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizers/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
    nice -n 10 swift test --sanitize=address --build-path .build/asan --skip IntegrationTests --no-parallel || status=1
echo "== swift test --sanitize=thread (unit tests, one at a time)"
TSAN_OPTIONS="suppressions=$PWD/scripts/sanitizers/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}" \
    nice -n 10 swift test --sanitize=thread --build-path .build/tsan --skip IntegrationTests --no-parallel || status=1
exit $status
