#!/usr/bin/env bash
# Read + encode benchmark, privsynth against a pandas baseline on the same files, in one run.
# Installs pandas/pyarrow/pyyaml from PyPI into benchmarks/.venv (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENSSL_NO_VENDOR=1
venv=benchmarks/.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "pandas==2.3.3" "pyarrow==22.0.0" "pyyaml==6.0.3"
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
PRIVSYNTH_BENCH_DIR="$dir" cargo bench -q --bench encode | tee "$dir/rust.txt"
"$venv/bin/python" benchmarks/encode_pandas.py "$dir" schemas/adult.yaml | tee "$dir/pandas.txt"
# Ratios: pandas time / privsynth time for read + encode.
rust_csv=$(awk -F'|' '/read \+ encode/ {gsub(/[ s]/,"",$3); print $3}' "$dir/rust.txt")
rust_pq=$(awk -F'|' '/read \+ encode/ {gsub(/[ s]/,"",$4); print $4}' "$dir/rust.txt")
pd_csv=$(awk '/PANDAS CSV/ {print $NF}' "$dir/pandas.txt")
pd_pq=$(awk '/PANDAS Parquet/ {print $NF}' "$dir/pandas.txt")
python3 -c "print(f'read + encode, pandas / privsynth: CSV {$pd_csv/$rust_csv:.1f}x, Parquet {$pd_pq/$rust_pq:.1f}x')"
