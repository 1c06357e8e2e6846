"""Charts of runs as altair values: overlaid curves, group mean ± std bands, EMA smoothing,
config diffs, and the min/max downsampling that keeps long runs light.

Names load on first use: `charts.comparison` (numpy only) must not pull in pandas or altair.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOME = {"MISSING": "builders", "compare_chart": "builders", "config_diff": "builders",
         "ema": "builders", "line_chart": "builders", "long_history": "builders",
         "StreamingMinMax": "downsample", "minmax_downsample": "downsample",
         "Comparison": "comparison", "Comparer": "comparison"}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
