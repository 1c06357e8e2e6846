#!/usr/bin/env bash
# A separate virtualenv with wandb and the frameworks, to run wandb's own integrations on the same
# tiny trainings as nbtracker's (bench/bench_integrations.py): bench/.venv-integrations. Idempotent.
# torch is pinned to the CPU build (an unpinned torch pulls a CUDA build of several GB).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv-integrations/bin/python ]; then
  "$PY" -m venv .venv-integrations
fi
V=.venv-integrations/bin
$V/pip install -q --upgrade pip
$V/pip install -q torch==2.13.0
$V/pip install -q wandb transformers accelerate lightning keras optuna xgboost-cpu lightgbm \
  scikit-learn numpy pandas orjson
KERAS_BACKEND=torch $V/python -c "import wandb, transformers, accelerate, lightning, keras, optuna, xgboost, lightgbm; print('wandb', wandb.__version__, 'ready')"
