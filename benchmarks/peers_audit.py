"""The Python audit stack on the same files as `cargo bench --bench audit` (run_audit.sh).

Times each peer step in CPU seconds (process time, both cores) and wall seconds. SDMetrics
0.32 and anonymeter 1.1 from PyPI in benchmarks/.venv-audit. Arguments: DIR (train.csv,
holdout.csv, synthetic.csv) and the names of the quasi-identifiers and the secret.
"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd

d, qi, secret = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
T = pd.read_csv(f"{d}/train.csv"); H = pd.read_csv(f"{d}/holdout.csv"); S = pd.read_csv(f"{d}/synthetic.csv")
out = {}
def timed(name, f):
    c0, w0 = time.process_time(), time.time()
    try:
        v = f()
    except Exception as e:  # a peer failing is a result too
        v = f"error: {type(e).__name__}: {e}"[:200]
    out[name] = {"cpu_s": round(time.process_time() - c0, 2), "wall_s": round(time.time() - w0, 2), "value": v}
    print(name, out[name], flush=True)

from sdmetrics.reports.single_table import QualityReport
from sdmetrics.single_table import DCROverfittingProtection, NewRowSynthesis
meta = {"columns": {c: {"sdtype": "numerical" if pd.api.types.is_numeric_dtype(T[c]) else "categorical"} for c in T.columns}}
def quality():
    r = QualityReport(); r.generate(T, S, meta, verbose=False); return r.get_score()
timed("sdmetrics QualityReport", quality)
timed("sdmetrics NewRowSynthesis (1,000 synthetic rows)", lambda: NewRowSynthesis.compute(T, S, meta, synthetic_sample_size=1000))
for n in [2000, 4000]:
    timed(f"sdmetrics DCROverfittingProtection (subsample {n})", lambda n=n: DCROverfittingProtection.compute_breakdown(T, S, H, {"tables": {"t": meta}}, "t", num_rows_subsample=n, num_iterations=1)["score"])

from anonymeter.evaluators import SinglingOutEvaluator, LinkabilityEvaluator, InferenceEvaluator
timed("anonymeter singling out univariate (500)", lambda: SinglingOutEvaluator(ori=T, syn=S, control=H, n_attacks=500).evaluate(mode="univariate").risk().value)
timed("anonymeter singling out multivariate (500)", lambda: SinglingOutEvaluator(ori=T, syn=S, control=H, n_attacks=500).evaluate(mode="multivariate").risk().value)
other = [c for c in T.columns if c not in qi]
timed("anonymeter linkability (2,000, k=1)", lambda: LinkabilityEvaluator(ori=T, syn=S, control=H, n_attacks=2000, aux_cols=(qi, other), n_neighbors=1).evaluate(n_jobs=2).risk().value)
timed("anonymeter inference (2,000)", lambda: InferenceEvaluator(ori=T, syn=S, control=H, aux_cols=[c for c in qi if c != secret], secret=secret, n_attacks=2000).evaluate(n_jobs=2).risk().value)
json.dump(out, open(f"{d}/peers.json", "w"), indent=1)
