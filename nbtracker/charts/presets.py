"""The chart presets `nbtracker.plot` logs and our renderers draw (wandb's preset names), with the
fields each one reads: a field names a column of the chart's table. The live panel's copy is
`PRESETS` in js/plot.js. No imports: `nbtracker.plot` loads this on first use.

A chart logged with another preset name (a custom Vega spec of a wandb workspace) keeps its name
and fields with its table; it is shown as the table, with a line saying it is not drawn.
"""

from __future__ import annotations

# preset -> (kind, required fields, optional fields)
PRESETS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "wandb/line/v0": ("line", ("x", "y"), ("stroke",)),
    "wandb/scatter/v0": ("scatter", ("x", "y"), ()),
    "wandb/bar/v0": ("bar", ("label", "value"), ()),
    "wandb/histogram/v0": ("histogram", ("value",), ()),
    "wandb/lineseries/v0": ("line_series", ("step", "lineKey", "lineVal"), ()),
    "wandb/confusion_matrix/v0": ("confusion_matrix", ("Actual", "Predicted", "nPredictions"), ()),
    "wandb/confusion_matrix/v1": ("confusion_matrix", ("Actual", "Predicted", "nPredictions"), ()),
    "wandb/area-under-curve/v0": ("curve", ("x", "y"), ("class",)),
}


def preset_kind(preset: object) -> str:
    """How a preset is drawn ("line", "scatter", …), "custom" when it is not ours to draw."""
    return PRESETS.get(preset, ("custom",))[0] if isinstance(preset, str) else "custom"
