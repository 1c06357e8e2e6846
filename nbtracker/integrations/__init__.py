"""Native integrations, one module per framework, each importing its framework only when used:

>>> from nbtracker.integrations.transformers import NbtrackerCallback
>>> from nbtracker.integrations.lightning import NbtrackerLogger
>>> from nbtracker.integrations.keras import NbtrackerMetricsLogger
>>> from nbtracker.integrations.optuna import NbtrackerCallback
>>> from nbtracker.integrations.xgboost import NbtrackerCallback
>>> from nbtracker.integrations.lightgbm import nbtracker_callback
>>> from nbtracker.integrations.accelerate import NbtrackerTracker

The frameworks are optional extras (`pip install 'nbtracker[transformers]'`), never dependencies.
"""
