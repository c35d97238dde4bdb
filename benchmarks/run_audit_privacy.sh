#!/usr/bin/env bash
# The claim audit on private-pgm's coded Adult (data/private-pgm/adult.csv, 48,842 x 14):
# `privsynth audit-privacy` (release build) for each mechanism, epsilon and canary given,
# with wall time, CPU time and peak memory from /usr/bin/time, and a Markdown row per run read
# from the JSON report.
# Usage: benchmarks/run_audit_privacy.sh MECHANISM RUNS "EPSILONS" [CANARY]
#   CANARY: worst (default) or common (the most frequent value of every column, which MST
#   never merges into its rare group).
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENSSL_NO_VENDOR=1
mech=${1:-mst}
runs=${2:-1000}
epsilons=${3:-"1 4"}
canary=${4:-worst}
cargo build -q --release --locked --bin privsynth
bin=target/release/privsynth
out=${OUT:-benchmarks/.audit-privacy}
mkdir -p "$out"
extra=()
if [ "$canary" = common ]; then
  # The most frequent code of every column of the public stand-in (this is public data).
  rec=$(python3 - <<'PY'
import csv, collections
rows = list(csv.DictReader(open("data/private-pgm/adult.csv")))
print(",".join(f"{c}={collections.Counter(r[c] for r in rows).most_common(1)[0][0]}" for c in rows[0]))
PY
)
  extra=(--canary-record "$rec")
fi
for eps in $epsilons; do
  tag="$mech-$eps-$canary-$runs"
  /usr/bin/time -f "%e %U %S %M" -o "$out/$tag.time" "$bin" audit-privacy data/private-pgm/adult.csv --schema schemas/adult-pgm.yaml \
    --epsilon "$eps" --mechanism "$mech" --runs "$runs" "${extra[@]}" --json "$out/$tag.json" --html "$out/$tag.html" -q > "$out/$tag.txt" || true
  python3 - "$out/$tag.json" "$out/$tag.time" "$canary" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
wall, user, sys_, rss = open(sys.argv[2]).read().split()[-4:]
w, b = r["scores"]
c = r["ceiling"]
print(f"| {r['claim']['mechanism'].upper()} | {r['claim']['epsilon']:g} | {sys.argv[3]} | {r['runs']} + {r['runs']} | "
      f"{w['bound']['epsilon']:.3f} | {b['bound']['epsilon']:.3f} | {c['epsilon']:.3f} | "
      f"{w['gdp']['mu_estimate']:.3f} [{w['gdp']['mu_interval'][0]:.3f}, {w['gdp']['mu_interval'][1]:.3f}] | {w['gdp']['mu_lower_bound']:.3f} | "
      f"{c['white_box_mu']:.3f} | {r['claim']['gaussian_mu']:.3f} | {float(wall):.0f} s | {float(user)+float(sys_):.0f} s | {int(rss)/1024:.0f} MB |")
PY
done
