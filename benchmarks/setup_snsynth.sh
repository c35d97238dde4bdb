#!/usr/bin/env bash
# Creates benchmarks/.venv-snsynth for benchmarks/snsynth_aim.py (smartnoise-synth 1.0.8 AIM peer).
# smartnoise-synth is installed with --no-deps to skip torch / opacus / pac-synth (AIM and MST do
# not use them); its remaining requirements (mbi>=1.1.0,<2, disjoint-set>=0.9,<0.10, Faker>=17,
# smartnoise-sql>=1.0.10) and their dependencies are pinned to the versions that were tested
# (Python 3.11.7). Idempotent: does nothing if the venv's python already imports snsynth's AIM.
# Usage: benchmarks/setup_snsynth.sh
set -euo pipefail
cd "$(dirname "$0")"
venv=.venv-snsynth
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "from snsynth.aim import AIMSynthesizer" 2>/dev/null; then
  echo "$venv already set up"
  exit 0
fi
python3 -c 'import sys; assert (3, 10) <= sys.version_info[:2] < (3, 15), "smartnoise-synth needs Python >= 3.10, < 3.15"'
python3 -m venv "$venv"
"$venv/bin/pip" install -q --no-deps "smartnoise-synth==1.0.8"
"$venv/bin/pip" install -q \
  "mbi==1.1.0" "disjoint-set==0.9.0" "Faker==40.54.0" "smartnoise-sql==1.0.10" \
  "pandas==2.3.3" "numpy==2.4.6" "scipy==1.17.1" "jax==0.10.2" "jaxlib==0.10.2" \
  "chex==0.1.92" "optax==0.2.8" "opendp==0.14.2" "networkx==3.6.1" "SQLAlchemy==2.1.9" \
  "absl-py==2.5.1" "antlr4-python3-runtime==4.9.3" "attrs==26.1.0" "Deprecated==1.3.1" \
  "graphviz==0.21" "ml_dtypes==0.6.0" "opt_einsum==3.4.0" "python-dateutil==4.0.0" \
  "pytz==2026.6" "PyYAML==6.0.3" "toolz==1.2.0" "typing_extensions==4.16.0" "tzdata==2026.6" \
  "wrapt==2.5.2" 2>&1 | grep -v "requires opacus\|requires pac-synth\|dependency resolver\|dependency conflicts" || true
"$venv/bin/python" -c "from snsynth.aim import AIMSynthesizer" 2>/dev/null
echo "$venv ready"
