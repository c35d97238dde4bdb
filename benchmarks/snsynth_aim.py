"""SmartNoise Synth's AIM (smartnoise-synth 1.0.8, `snsynth.aim.AIMSynthesizer`) as a peer benchmark.

Fits AIMSynthesizer(epsilon=EPSILON, delta=1e-9) with its defaults (max_model_size=80, degree=2,
max_cells=10000, rounds=16*d) on an integer-coded table, every column declared categorical (the
default "cube" LabelTransformer), and writes two synthetic tables with as many rows as the input:

- OUT_PREFIX-round.csv: the synthesizer's own `sample()`, i.e. mbi 1.1.0's
  `MarkovRandomField.synthetic_data(method="round")`, which ships the mbi 1.1.x sampling bugs
  (wrong conditioning set and comonotone sibling ranks; ryan112358/mbi PR #145).
- OUT_PREFIX-iid.csv: i.i.d. sampling from the same fitted model, `synth.synthesizer` (the fitted
  mbi MarkovRandomField) `.synthetic_data(rows=N, method="sample")`, mapped back through
  `synth._transformer.inverse_transform` exactly as `AIMSynthesizer.sample()` does. Note that mbi
  1.1.0's "sample" method removes the comonotone-rank bug but still takes each column's parents from
  the model's measurement cliques, not the junction-tree maximal cliques (fill-in edges are ignored).

Categories: by default the LabelTransformer is pre-fitted on the *public* domain from DOMAIN.json
(every code 0..size-1 of every column) and passed to `fit(transformer=...)`, so the model's domain
is the public one and no category list is read from the private data. Set SNAIM_CATEGORIES=data to
get snsynth's out-of-the-box behaviour instead (categories inferred from the data; smaller domains
on Adult, e.g. capital-gain 23 values instead of 100). Either way the outputs hold the original
integer codes, columns in DOMAIN.json order.

Seeds: numpy's global RNG (exponential mechanism, sampling) and `random` are seeded from SEED; the
Gaussian noise comes from OpenDP's `make_gaussian` (a CSPRNG) and cannot be seeded, so runs are
not bit-reproducible.

Usage: python snsynth_aim.py DATA.csv DOMAIN.json EPSILON SEED OUT_PREFIX
Prints one line to stdout:
    SNAIM eps seed fit_cpu_seconds wall_seconds peak_rss_mb
fit_cpu_seconds = user+sys CPU (getrusage RUSAGE_SELF + RUSAGE_CHILDREN) over fit + the "round"
sample; wall_seconds over the same span; peak_rss_mb = max ru_maxrss (self, children) in MiB at the
end. snsynth's own prints and progress go to stderr.

Installed (see benchmarks/setup_snsynth.sh) in benchmarks/.venv-snsynth on Python 3.11:
    pip install --no-deps smartnoise-synth==1.0.8
    pip install mbi==1.1.0 disjoint-set==0.9.0 Faker==40.54.0 smartnoise-sql==1.0.10 \
        pandas==2.3.3 numpy==2.4.6 scipy==1.17.1 jax==0.10.2 jaxlib==0.10.2 ...
(torch / opacus / pac-synth are skipped; AIM does not use them.)
"""
import contextlib
import json
import os
import random
import resource
import sys
import time

import numpy as np
import pandas as pd


def cpu_seconds():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def peak_rss_mb():
    s = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    c = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(s, c) / 1024  # Linux: KiB


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def public_transformer(columns, domain):
    """snsynth's default cube-style transformer (LabelTransformer per column, nullable=False),
    fitted on the public domain: every code 0..size-1 of every column."""
    from snsynth.transform.table import TableTransformer

    tt = TableTransformer.create(
        pd.DataFrame({c: [0] for c in columns}), style="cube",
        categorical_columns=list(columns), nullable=False)
    width = max(domain[c] for c in columns)
    tt.fit(pd.DataFrame({c: np.arange(width) % domain[c] for c in columns}))
    assert tt.cardinality == [domain[c] for c in columns], tt.cardinality
    return tt


def to_frame(synth, mbi_dataset, columns):
    """Map an mbi Dataset over col0..colK back to the original codes, as AIMSynthesizer.sample does."""
    colnames = ["col" + str(i) for i in range(synth._transformer.output_width)]
    df = mbi_dataset.df[colnames]
    rows = [tuple(t[1:]) for t in df.itertuples()]
    out = synth._transformer.inverse_transform(rows)
    return pd.DataFrame(out, columns=columns)


def write(df, path, columns, domain):
    df = df[columns]
    for c in columns:
        v = df[c].to_numpy()
        assert not pd.isna(v).any(), f"{path}: missing values in {c}"
        assert v.min() >= 0 and v.max() < domain[c], f"{path}: {c} outside domain"
    df.astype(np.int64).to_csv(path, index=False)


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: python snsynth_aim.py DATA.csv DOMAIN.json EPSILON SEED OUT_PREFIX")
    path, domain_path, eps, seed, prefix = (sys.argv[1], sys.argv[2], float(sys.argv[3]),
                                            int(sys.argv[4]), sys.argv[5])
    domain = json.load(open(domain_path))
    columns = list(domain)
    df = pd.read_csv(path)[columns]
    n = len(df)
    random.seed(seed)
    np.random.seed(seed)

    with contextlib.redirect_stdout(sys.stderr):  # snsynth prints to stdout
        from snsynth.aim import AIMSynthesizer

        mode = os.environ.get("SNAIM_CATEGORIES", "public")
        transformer = public_transformer(columns, domain) if mode == "public" else None
        log(f"categories from: {mode}")
        synth = AIMSynthesizer(epsilon=eps, delta=1e-9, verbose=True)

        c0, t0 = cpu_seconds(), time.time()
        synth.fit(df, transformer=transformer, categorical_columns=columns)
        log(f"fit done: {cpu_seconds() - c0:.1f} CPU s, {time.time() - t0:.1f} s wall")
        rounded = synth.sample(n)
        cpu, wall = cpu_seconds() - c0, time.time() - t0
        log(f"round sample done: {cpu:.1f} CPU s, {wall:.1f} s wall")

        write(pd.DataFrame(rounded, columns=columns), f"{prefix}-round.csv", columns, domain)
        c1 = cpu_seconds()
        iid = to_frame(synth, synth.synthesizer.synthetic_data(rows=n, method="sample"), columns)
        log(f"iid sample: {cpu_seconds() - c1:.1f} CPU s")
        write(iid, f"{prefix}-iid.csv", columns, domain)
        names = {f"col{i}": c for i, c in enumerate(columns)}
        log("model cliques:", [tuple(names[a] for a in cl) for cl in synth.synthesizer.cliques])

    print(f"SNAIM {eps:g} {seed} {cpu:.2f} {wall:.2f} {peak_rss_mb():.0f}", flush=True)


if __name__ == "__main__":
    main()
