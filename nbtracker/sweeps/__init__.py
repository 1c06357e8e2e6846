"""Sweeps in wandb's format, run on Optuna (an extra: `pip install 'nbtracker[sweeps]'`).

- `config`: the sweep configuration (YAML or dict) parsed and validated;
- `space`: the parameter space sampled through an Optuna trial;
- `hyperband`: `early_terminate: {type: hyperband}` as an Optuna pruner;
- `process`: a trial's command line and its process group.
"""
