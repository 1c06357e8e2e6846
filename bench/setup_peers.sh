#!/usr/bin/env bash
# A separate virtualenv with the trackers nbtracker is compared against (never dependencies of
# nbtracker itself): bench/.venv-peers. Idempotent. The full `mlflow` package (its tracking server,
# for bench_server.py) and psycopg2-binary (its PostgreSQL driver) come beside mlflow-skinny.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv-peers/bin/python ]; then
  "$PY" -m venv .venv-peers
fi
.venv-peers/bin/pip install -q --upgrade pip
.venv-peers/bin/pip install -q wandb trackio mlflow-skinny mlflow psycopg2-binary sqlalchemy alembic tensorboardX tensorboard orjson numpy pandas
.venv-peers/bin/python -c "import wandb, trackio, mlflow, mlflow.server, psycopg2, tensorboardX; print('peers ready:', wandb.__version__, trackio.__version__, mlflow.__version__, tensorboardX.__version__)"
