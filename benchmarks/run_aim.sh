#!/usr/bin/env bash
# AIM side by side: privsynth's AIM (and MST, for reference) against SmartNoise Synth 1.0.8's AIM
# on the same data (data/private-pgm/adult.csv, 48,842 x 14, public domain from
# adult-domain.json), delta 1e-9, every output scored by the same TVD code
# (benchmarks/fidelity.rs --score). SmartNoise is scored twice: its own sampler (mbi 1.1's
# "round", which has the sampling bugs) and i.i.d. sampling from the same fitted model.
#
# SmartNoise AIM takes ~1,000+ CPU seconds per run at epsilon 1, so it runs PEER_SEEDS times
# (default 1) per epsilon in PEER_EPSILONS (default: the same epsilons). Its outputs are kept in
# benchmarks/peer-out/ and reused when present (delete them to rerun).
#
# Usage: benchmarks/run_aim.sh [EPSILONS (default "0.3 1 3")] [SEEDS (default 5)]
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENSSL_NO_VENDOR=1
epsilons=${1:-"0.3 1 3"}
seeds=${2:-5}
peer_epsilons=${PEER_EPSILONS:-$epsilons}
peer_seeds=${PEER_SEEDS:-1}
benchmarks/setup_snsynth.sh >/dev/null
mkdir -p benchmarks/peer-out
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo bench -q --bench fidelity --no-run 2>/dev/null
list=$(echo $epsilons | tr ' ' ',')
cargo bench -q --bench fidelity -- --aim "$list" "$seeds" > "$dir/aim.md"
cargo bench -q --bench fidelity -- "$list" "$seeds" > "$dir/mst.md"
for eps in $peer_epsilons; do
  for seed in $(seq 0 $((peer_seeds - 1))); do
    p=benchmarks/peer-out/snaim-$eps-$seed
    if [ ! -s "$p.txt" ]; then
      OMP_NUM_THREADS=2 benchmarks/.venv-snsynth/bin/python benchmarks/snsynth_aim.py \
        data/private-pgm/adult.csv data/private-pgm/adult-domain.json "$eps" "$seed" "$p" > "$p.txt" 2> "$p.err"
    fi
    cat "$p.txt" >> "$dir/peer.txt"
  done
done
cargo bench -q --bench fidelity -- --score benchmarks/peer-out/snaim-*-round.csv benchmarks/peer-out/snaim-*-iid.csv > "$dir/scores.txt"
python3 - "$dir" "$epsilons" <<'PY'
import re, sys, statistics as st
d, epsilons = sys.argv[1], [float(e) for e in sys.argv[2].split()]
def ours(f):
    out = {}
    for line in open(f"{d}/{f}"):
        m = re.match(r"\| \*\*([\d.]+)\*\* \| mean \| \*\*([\d.]+)\*\* \| \*\*([\d.]+)\*\* \| \| \*\*([\d.]+)\*\*", line)
        if m:
            out[float(m.group(1))] = tuple(float(x) for x in m.groups()[1:])
    peak = float(re.search(r"peak memory: (\d+)", open(f"{d}/{f}").read()).group(1))
    return out, peak
aim, aim_peak = ours("aim.md")
mst, _ = ours("mst.md")
peer = {}
for line in open(f"{d}/peer.txt"):
    _, eps, seed, cpu, wall, rss = line.split()
    peer.setdefault(float(eps), []).append((float(cpu), float(rss)))
scores = {}
for line in open(f"{d}/scores.txt"):
    _, f, t2, t3 = line.split()
    m = re.search(r"snaim-([\d.]+)-\d+-(round|iid)\.csv", f)
    scores.setdefault((float(m.group(1)), m.group(2)), []).append((float(t2), float(t3)))
print("| epsilon | privsynth AIM 2-way / 3-way TVD | privsynth MST | SmartNoise AIM, its sampler | SmartNoise AIM, i.i.d. sampling | privsynth AIM CPU s | SmartNoise AIM CPU s | CPU ratio | peak MB (privsynth / SmartNoise) |")
print("|---|---|---|---|---|---|---|---|---|")
for e in epsilons:
    a, m = aim[e], mst[e]
    def sc(kind):
        s = scores.get((e, kind))
        return f"{st.mean(x[0] for x in s):.4f} / {st.mean(x[1] for x in s):.4f} (n={len(s)})" if s else "not run"
    if e in peer:
        pc = st.mean(c for c, _ in peer[e]); pr = max(r for _, r in peer[e])
        cpu, ratio, mem = f"{pc:.0f}", f"**{pc / a[2]:.0f}x**", f"{aim_peak:.0f} / {pr:.0f}"
    else:
        cpu, ratio, mem = "not run", "", f"{aim_peak:.0f} / -"
    print(f"| {e:g} | **{a[0]:.4f} / {a[1]:.4f}** | {m[0]:.4f} / {m[1]:.4f} | {sc('round')} | {sc('iid')} | {a[2]:.2f} | {cpu} | {ratio} | {mem} |")
PY
