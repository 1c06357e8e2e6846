"""Comparisons at scale: any number of runs draws, long runs are read through their summaries,
group bands come from full-resolution data, zooming refines from the full data."""

from __future__ import annotations

import nbtracker


def many_runs(n: int, steps: int = 8, project: str = "many") -> list:
    """`n` finished runs; run i logs loss = i + 1/(s+1) at steps 0..steps-1 (last value i + 1/steps)."""
    for i in range(n):
        run = nbtracker.init(project=project, name=f"r{i:04d}", group="g" if i % 2 else "h")
        for s in range(steps):
            run.log({"loss": i + 1.0 / (s + 1)})
        run.finish(quiet=True)
    return list(nbtracker.Api().runs(project, order="+created_at"))


def test_a_thousand_runs_draw_the_top_fifty_with_a_note():
    runs = many_runs(1000)
    chart = nbtracker.compare(*runs, metrics=["loss"])
    spec = chart.to_dict()  # altair refused more than 5,000 rows here (MaxRowsError)
    text = str(spec)
    assert "showing 50 of 1,000 runs" in text
    assert "lowest" in text  # the direction taken is named
    shown = {row["run"] for ds in spec["datasets"].values() for row in ds if "run" in row}
    assert shown == {f"r{i:04d}" for i in range(50)}  # lowest last loss: the first fifty
