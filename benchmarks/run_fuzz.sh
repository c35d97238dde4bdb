#!/usr/bin/env bash
# The fuzz targets of tests/fuzz.rs at length (the suite runs 256 cases each).
# Usage: benchmarks/run_fuzz.sh [CASES]   (default 20000 per target)
set -euo pipefail
cd "$(dirname "$0")/.."
PROPTEST_CASES="${1:-20000}" cargo test --test fuzz -- --nocapture
