"""Detection AUC of a standard gradient-boosted classifier, for comparison with privsynth's.

scikit-learn's HistGradientBoostingClassifier (PyPI, benchmarks/.venv-audit) tells the rows of
each synthetic table (label 1) from the train rows (label 0), with the audit's design: all rows,
stratified 3-fold cross-validation, mean AUC over the folds. Categorical columns are native
categories (missing = NaN); numbers as they are. Two settings:
- "200 iterations": max_iter=200, 31 leaves, 255 bins, no early stopping (the issue's reference);
- "default": scikit-learn's defaults (100 iterations, early stopping on 10% when n > 10,000).

Arguments: DIR (train.csv and the sets), then the set names (files DIR/NAME.csv).
Prints one line per set and setting: AUC, per-fold AUCs, CPU seconds.
"""
import sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.metrics import roc_auc_score

d, names = sys.argv[1], sys.argv[2:]
T = pd.read_csv(f"{d}/train.csv", na_values=["?"], keep_default_na=True)
cats = [c for c in T.columns if not pd.api.types.is_numeric_dtype(T[c])]
settings = {
    "200 iterations": dict(max_iter=200, max_leaf_nodes=31, max_bins=255, learning_rate=0.1, early_stopping=False),
    "default": dict(),
}
for name in names:
    S = pd.read_csv(f"{d}/{name}.csv", na_values=["?"], keep_default_na=True)
    X = pd.concat([T, S[T.columns]], ignore_index=True)
    for c in cats:
        X[c] = X[c].astype("category")
    y = np.r_[np.zeros(len(T)), np.ones(len(S))]
    for label, kw in settings.items():
        c0 = time.process_time()
        aucs = []
        for k, (tr, te) in enumerate(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y)):
            m = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=k, **kw)
            m.fit(X.iloc[tr], y[tr])
            aucs.append(roc_auc_score(y[te], m.predict_proba(X.iloc[te])[:, 1]))
        print(f"{name:<12} {label:<15} AUC {np.mean(aucs):.4f}  folds {' '.join(f'{a:.4f}' for a in aucs)}  "
              f"cpu {time.process_time() - c0:.1f} s", flush=True)
