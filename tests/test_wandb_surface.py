"""The rest of the wandb surface that real notebooks and scripts use, under
`import nbtracker as wandb`: run URLs and names, `log_code`, module helpers (`termlog`,
`Settings`, `setup`, `util`...), and the query API's wandb forms (`url`, `files()`, summary
updates, `history(pandas=False)`, `runs()` slicing). Each through the public API, with real runs.
"""

from __future__ import annotations

import math

import nbtracker as wandb


def _rows(run) -> list[dict]:
    return wandb.Api().run(run.path).history(pandas=False)


# -- log() -------------------------------------------------------------------------------------

def test_log_without_data_commits_the_row_accumulated_with_commit_false():
    # wandb's own example (api-examples/metrics-at-different-steps): log(..., commit=False)
    # twice, then wandb.log() to commit the step
    run = wandb.init(project="surface")
    for i in range(3):
        wandb.log({"loss": 1.0 / (i + 1)}, commit=False)
        if i % 2 == 0:
            wandb.log({"val": i}, commit=False)
        wandb.log()
    assert run.step == 3
    wandb.log({"after": 1})
    wandb.log({}, commit=True)  # nothing pending at step 4: the step stays
    run.log({})
    assert run.step == 4
    run.finish()
    assert _rows(run) == [
        {"_step": 0, "loss": 1.0, "val": 0, **_times(run, 0)},
        {"_step": 1, "loss": 0.5, **_times(run, 1)},
        {"_step": 2, "loss": 1 / 3, "val": 2, **_times(run, 2)},
        {"_step": 3, "after": 1, **_times(run, 3)},
    ]


def _times(run, step: int) -> dict:
    row = next(r for r in wandb.Api().run(run.path).scan_history() if r["_step"] == step)
    return {"_runtime": row["_runtime"], "_timestamp": row["_timestamp"]}


# -- Api: history(pandas=False) ----------------------------------------------------------------

def test_history_as_dicts_keeps_values_as_logged_and_leaves_missing_keys_out():
    run = wandb.init(project="surface")
    wandb.log({"i": 0, "x": 0.5})
    wandb.log({"i": 1})  # no x in this row
    wandb.log({"i": 2, "x": float("nan"), "s": "text"})
    run.finish()
    rows = wandb.Api().run(run.path).history(pandas=False)
    assert [r["_step"] for r in rows] == [0, 1, 2]
    assert [type(r["i"]) for r in rows] == [int, int, int]  # ints stay ints
    assert "x" not in rows[1] and "s" not in rows[0]  # missing is missing, not NaN
    assert rows[0]["x"] == 0.5 and math.isnan(rows[2]["x"]) and rows[2]["s"] == "text"
    assert all({"_runtime", "_timestamp"} <= r.keys() for r in rows)


def test_history_as_dicts_samples_keys_and_x_axis_as_the_frame_does():
    run = wandb.init(project="surface")
    for i in range(40):
        row = {"loss": 40 - i, "epoch": (39 - i) // 10}
        if i % 4 == 0:
            row["val"] = i
        wandb.log(row)
    run.finish()
    r = wandb.Api().run(run.path)
    for kw in ({"samples": 7}, {"samples": 5, "keys": ["val"]}, {"keys": ["loss", "val"]},
               {"x_axis": "epoch"}, {}):
        df = r.history(**kw)
        rows = r.history(pandas=False, **kw)
        assert [row["_step"] for row in rows] == df["_step"].tolist(), kw
        for key in ("loss", "val"):
            if key in df.columns:
                assert [row.get(key) for row in rows] == [
                    None if isinstance(v, float) and math.isnan(v) else v for v in df[key]], kw
    assert r.history(samples=500, keys=["val"], pandas=False)[1] == {
        "_step": 4, "val": 4, **_times(run, 4)}


# -- Api: runs() ------------------------------------------------------------------------------

def test_runs_support_len_index_slicing_and_per_page():
    made = []
    for i in range(5):
        with wandb.init(project="listing", name=f"r{i}", config={"i": i}, reinit=True) as run:
            run.log({"acc": i / 10})
        made.append(run.id)
    runs = wandb.Api().runs("listing", per_page=2, order="+config.i")
    assert len(runs) == 5
    assert runs[1].id == made[1] and runs[-1].id == made[4]
    first = runs[:3]
    assert [r.id for r in first] == made[:3]
    assert list(first.to_pandas()["config.i"]) == [0, 1, 2]  # a slice is still a Runs
    assert [r.name for r in runs] == [f"r{i}" for i in range(5)]
    assert [r.id for r in wandb.Api().runs("listing", filters={"config.i": {"$gte": 3}},
                                          order="-config.i")] == [made[4], made[3]]


# -- Api: summary updates ----------------------------------------------------------------------

def test_api_summary_update_with_values_is_saved_at_once_as_wandb_does():
    with wandb.init(project="surface") as run:
        run.log({"acc": 0.5})
    r = wandb.Api().run(run.path)
    r.summary.update({"best": 0.9, "note": "kept"})  # wandb writes this at once
    again = wandb.Api().run(run.path)
    assert again.summary["best"] == 0.9 and again.summary["note"] == "kept"
    assert again.summary["acc"] == 0.5

    r = wandb.Api().run(run.path)
    r.summary["best"] = 0.95
    r.summary.update()  # without values: writes what was set
    assert wandb.Api().run(run.path).summary["best"] == 0.95

    r = wandb.Api().run(run.path)
    r.summary["worst"] = 0.1
    r.update()  # run.update() writes the summary too
    assert wandb.Api().run(run.path).summary["worst"] == 0.1
