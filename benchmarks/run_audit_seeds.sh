#!/usr/bin/env bash
# Do the audit's verdicts flip with the seed? And is its detector as strong as a standard one?
# 1. cargo bench --bench audit_seeds: the five Adult sets (fresh real sample, AIM epsilon 1 made
#    by `privsynth synth`, copy, 10% copy, independent columns) built into DIR, then every
#    default gate for seeds 0-9 at --attacks 2000 and 500; exits 1 if a gate's verdict changed.
# 2. benchmarks/detection_peer.py: scikit-learn's HistGradientBoostingClassifier on the same
#    files (PyPI, benchmarks/.venv-audit), for the detection AUC comparison.
# DIR (default benchmarks/peer-out/audit-seeds) keeps the sets; delete it to rebuild them.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-benchmarks/peer-out/audit-seeds}
mkdir -p "$dir"
status=0
cargo bench --bench audit_seeds -- --dir "$dir" --seeds "${SEEDS:-10}" || status=$?
if [ ! -x benchmarks/.venv-audit/bin/python ]; then
  python3 -m venv benchmarks/.venv-audit
fi
benchmarks/.venv-audit/bin/pip install -q scikit-learn pandas
benchmarks/.venv-audit/bin/python benchmarks/detection_peer.py "$dir" fresh aim copy copied10 independent
exit $status
