#!/usr/bin/env bash
# Audit speed, privsynth and the Python audit stack on the same files, in one run.
# privsynth: cargo bench --bench audit (Adult 16k x 15 with 10% copied rows; generated 50k x 50).
# Peers: SDMetrics 0.32 and anonymeter 1.1 from PyPI in benchmarks/.venv-audit, on Adult 16k.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
PRIVSYNTH_AUDIT_KEEP="$dir" cargo bench --bench audit -- "${REPEATS:-3}"
if [ ! -x benchmarks/.venv-audit/bin/python ]; then
  python3 -m venv benchmarks/.venv-audit
  benchmarks/.venv-audit/bin/pip install -q sdmetrics==0.32.0 anonymeter==1.1.0
fi
benchmarks/.venv-audit/bin/python benchmarks/peers_audit.py "$dir/adult16k" \
  age,education,marital_status,race,sex,native_country income
