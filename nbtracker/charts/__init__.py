"""Charts of runs as altair values: overlaid curves, group mean ± std bands, EMA smoothing,
config diffs, and the min/max downsampling that keeps long runs light."""

from .builders import MISSING, compare_chart, config_diff, ema, line_chart, long_history
from .downsample import StreamingMinMax, minmax_downsample

__all__ = ["MISSING", "StreamingMinMax", "compare_chart", "config_diff", "ema", "line_chart",
           "long_history", "minmax_downsample"]
