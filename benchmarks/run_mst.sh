#!/usr/bin/env bash
# MST side by side: privsynth against private-pgm's MST (on mbi 2.0 from PyPI), same data
# (data/private-pgm/adult.csv, 48,842 x 14), same epsilons and seeds, both scored by the same
# TVD code (benchmarks/fidelity.rs --score). Prints a Markdown table with ratios.
# Usage: benchmarks/run_mst.sh [EPSILONS (default "0.3 1 3")] [SEEDS (default 5)]
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENSSL_NO_VENDOR=1
epsilons=${1:-"0.3 1 3"}
seeds=${2:-5}
venv=benchmarks/.venv-pgm
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "mbi==2.0.0" "pandas==2.3.3"
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo bench -q --bench fidelity --no-run 2>/dev/null
ours=$(cargo bench -q --bench fidelity -- "$(echo $epsilons | tr ' ' ',')" "$seeds")
echo "$ours" > "$dir/ours.md"
for eps in $epsilons; do
  for seed in $(seq 0 $((seeds - 1))); do
    "$venv/bin/python" benchmarks/pgm_mst.py data/private-pgm/adult.csv data/private-pgm/adult-domain.json "$eps" "$seed" "$dir/pgm-$eps-$seed.csv" >> "$dir/pgm.txt" 2>/dev/null
  done
done
cargo bench -q --bench fidelity -- --score "$dir"/pgm-*.csv > "$dir/scores.txt"
python3 - "$dir" "$epsilons" <<'PY'
import re, sys, statistics as st
d, epsilons = sys.argv[1], sys.argv[2].split()
ours = {}
for line in open(f"{d}/ours.md"):
    m = re.match(r"\| \*\*([\d.]+)\*\* \| mean \| \*\*([\d.]+)\*\* \| \*\*([\d.]+)\*\* \| \| \*\*([\d.]+)\*\*", line)
    if m:
        ours[float(m.group(1))] = tuple(float(x) for x in m.groups()[1:])
peak = re.search(r"peak memory: (\d+)", open(f"{d}/ours.md").read()).group(1)
pgm = {}
for line in open(f"{d}/pgm.txt"):
    _, eps, seed, cpu, wall, rss = line.split()
    pgm.setdefault(float(eps), []).append((float(cpu), float(rss)))
scores = {}
for line in open(f"{d}/scores.txt"):
    _, f, t2, t3 = line.split()
    eps = float(re.search(r"pgm-([\d.]+)-\d+\.csv", f).group(1))
    scores.setdefault(eps, []).append((float(t2), float(t3)))
print("| epsilon | privsynth 2-way TVD | private-pgm 2-way TVD | privsynth 3-way TVD | private-pgm 3-way TVD | privsynth CPU s | private-pgm CPU s | CPU ratio | peak MB (privsynth / private-pgm) |")
print("|---|---|---|---|---|---|---|---|---|")
for e in map(float, epsilons):
    o = ours[e]
    p2 = st.mean(s[0] for s in scores[e]); p3 = st.mean(s[1] for s in scores[e])
    pc = st.mean(c for c, _ in pgm[e]); pr = max(r for _, r in pgm[e])
    print(f"| {e:g} | **{o[0]:.4f}** | {p2:.4f} | **{o[1]:.4f}** | {p3:.4f} | {o[2]:.2f} | {pc:.1f} | **{pc / o[2]:.0f}x** | {peak} / {pr:.0f} |")
PY
