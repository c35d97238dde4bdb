"""MST (McKenna, Miklau & Sheldon 2021) on mbi 2.0 (private-pgm's estimation library, PyPI).

private-pgm's own `mechanisms/mst.py` driver is not shipped on PyPI, so this script follows the
published algorithm step by step on mbi's public API (its compression, mirror-descent estimator
and randomised-rounding sampler do the heavy lifting), with the reference defaults:
rho split in thirds, sigma = sqrt(3 / (2 rho)), one-way noise sigma*sqrt(d), compression at
3 x that noise, exponential-mechanism Kruskal tree with eps = sqrt(8 (rho/3) / (d-1)), two-way
noise sigma*sqrt(d-1), and 10,000 mirror-descent iterations for the final estimate
(private-pgm 1.0's MST default; 1,000 for the independence model used for scoring).

Usage: python pgm_mst.py DATA.csv DOMAIN.json EPSILON SEED OUT.csv
Prints one line: PGM eps seed cpu_seconds wall_seconds peak_rss_mb
"""
import itertools
import json
import math
import resource
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_enable_compilation_cache", False)  # as mbi recommends

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mbi import Dataset, Domain, LinearMeasurement  # noqa: E402
from mbi.estimation import MirrorDescent  # noqa: E402


def cdp_delta(rho, eps):
    if rho == 0:
        return 0.0
    lo, hi = 1.01, (eps + 1) / (2 * rho) + 2
    for _ in range(1000):
        a = (lo + hi) / 2
        if (2 * a - 1) * rho - eps + math.log1p(-1 / a) < 0:
            lo = a
        else:
            hi = a
    a = (lo + hi) / 2
    return min(math.exp((a - 1) * (a * rho - eps) + a * math.log1p(-1 / a)) / (a - 1), 1.0)


def cdp_rho(eps, delta):
    lo, hi = 0.0, eps + 1
    for _ in range(1000):
        mid = (lo + hi) / 2
        if cdp_delta(mid, eps) <= delta:
            lo = mid
        else:
            hi = mid
    return lo


def measure(data, cliques, sigma, rng):
    out = []
    for cl in cliques:
        x = data.project(cl).datavector()
        out.append(LinearMeasurement(x + rng.normal(0, sigma, x.size), cl, sigma))
    return out


def exponential(scores, eps, sensitivity, rng):
    q = eps * (scores - scores.max()) / (2 * sensitivity)
    p = np.exp(q) / np.exp(q).sum()
    return rng.choice(scores.size, p=p)


def mst(data, eps, delta, rng):
    rho = cdp_rho(eps, delta)
    sigma = math.sqrt(3 / (2 * rho))
    attrs = list(data.domain.attributes)
    d = len(attrs)
    # 1. one-way marginals
    one = measure(data, [(a,) for a in attrs], sigma * math.sqrt(d), rng)
    # 2. compression of rare values
    mapping = {}
    for m in one:
        a = m.clique[0]
        supp = np.asarray(m.noisy_measurement) >= 3 * m.stddev
        if supp.all():
            continue
        idx = np.cumsum(supp) - 1
        mapping[a] = np.where(supp, idx, supp.sum()).astype(int)
    data_c = data.compress(mapping)
    one_c = [m.compress(mapping, data.domain) for m in one]
    # 3. spanning tree by the exponential mechanism
    indep = MirrorDescent().estimate(data_c.domain, one_c, iters=1000)
    pairs = list(itertools.combinations(attrs, 2))
    scores = np.array([np.abs(data_c.project(p).datavector() - indep.project(p).datavector()).sum() for p in pairs])
    comp = {a: a for a in attrs}

    def find(x):
        while comp[x] != x:
            x = comp[x]
        return x

    eps_em = math.sqrt(8 * (rho / 3) / (d - 1))
    tree = []
    for _ in range(d - 1):
        cand = [i for i, (a, b) in enumerate(pairs) if find(a) != find(b)]
        i = cand[exponential(scores[cand], eps_em, 1.0, rng)]
        a, b = pairs[i]
        comp[find(a)] = find(b)
        tree.append(pairs[i])
    # 4. two-way marginals of the tree
    two = measure(data_c, tree, sigma * math.sqrt(d - 1), rng)
    # 5. estimation, sampling, undoing the compression
    model = MirrorDescent().estimate(data_c.domain, one_c + two, iters=10000)
    synth = model.synthetic_data(rows=data.records)
    return synth.decompress(mapping)


def main():
    path, domain_path, eps, seed, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    config = json.load(open(domain_path))
    df = pd.read_csv(path)
    data = Dataset({c: df[c].to_numpy() for c in config}, Domain.fromdict(config))
    rng = np.random.default_rng(seed)
    t0, c0 = time.time(), time.process_time()
    synth = mst(data, eps, 1e-9, rng)
    cpu, wall = time.process_time() - c0, time.time() - t0
    pd.DataFrame({c: np.asarray(v) for c, v in synth.to_dict().items()})[list(config)].to_csv(out, index=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"PGM {eps} {seed} {cpu:.2f} {wall:.2f} {peak:.0f}")


if __name__ == "__main__":
    main()
