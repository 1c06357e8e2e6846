"""nbtracker.plot next to wandb.plot: the same charts made from the same data — their tables
(values), their specs, the keys and steps a run logs for them — and the time to make one.

    .venv/bin/python bench/bench_plot.py [--n 50000 --k 10]

wandb's side runs in bench/.venv-integrations (bench/setup_integrations.sh), offline; its
pr/roc curves and confusion matrix come from scikit-learn there, ours from numpy alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from integration_peers import (  # noqa: E402
    compare,
    key_steps,
    median_time,
    nbtracker_rows,
    print_compare,
    run_side,
    wandb_rows,
)


def data(n: int, k: int, seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    p = np.round(rng.dirichlet(np.ones(k), n), 3)  # ties, as scores rounded by a model
    return {"y": y, "p": p, "preds": rng.integers(0, k, n)}


def charts(lib, n: int = 500, k: int = 3) -> dict:
    """The same charts through `lib` (wandb or nbtracker)."""
    d = data(n, k)
    rows = [[i, 1 / (i + 1), s] for s in ("train", "val") for i in range(50)]
    table = lib.Table(columns=["step", "loss", "split"], data=rows)
    bars = lib.Table(columns=["class", "acc"], data=[["cat", 0.9], ["dog", 0.7], ["owl", 0.4]])
    names = [f"c{i}" for i in range(k)]
    return {
        "line": lib.plot.line(table, "step", "loss", stroke="split", title="loss"),
        "scatter": lib.plot.scatter(table, "step", "loss"),
        "bar": lib.plot.bar(bars, "class", "acc", title="acc"),
        "histogram": lib.plot.histogram(table, "loss"),
        "line_series": lib.plot.line_series(list(range(10)), [[i * j for i in range(10)]
                                                             for j in range(3)], xname="step"),
        "confusion_matrix(probs)": lib.plot.confusion_matrix(probs=d["p"], y_true=d["y"]),
        "confusion_matrix(preds)": lib.plot.confusion_matrix(y_true=d["y"], preds=d["preds"],
                                                             class_names=names),
        "pr_curve": lib.plot.pr_curve(d["y"], d["p"], labels=names),
        "roc_curve": lib.plot.roc_curve(d["y"], d["p"], labels=names),
    }


def side(which: str, n: int, k: int) -> dict:
    if which == "wandb":
        import wandb as lib
    else:
        import nbtracker as lib
    out: dict = {"charts": {}, "time": {}}
    for name, c in charts(lib).items():
        out["charts"][name] = {"columns": list(c.table.columns), "data": c.table.data,
                               "spec": c.spec.spec_name, "fields": c.spec.fields,
                               "string_fields": c.spec.string_fields}
    big = data(n, k, seed=1)
    for name, fn in (("roc_curve", lambda: lib.plot.roc_curve(big["y"], big["p"])),
                     ("pr_curve", lambda: lib.plot.pr_curve(big["y"], big["p"])),
                     ("confusion_matrix", lambda: lib.plot.confusion_matrix(
                         y_true=big["y"], preds=big["preds"]))):
        out["time"][name] = median_time(fn, 3)
    tmp = tempfile.mkdtemp()
    if which == "wandb":
        run = lib.init(project="plots", dir=tmp, mode="offline")
    else:
        os.environ["NBTRACKER_DIR"] = tmp
        run = lib.init(project="plots")
    small = charts(lib)
    run.log({"roc": small["roc_curve"], "cm": small["confusion_matrix(preds)"]})
    run.log({"line": small["line"]})
    run.log({"pr": lib.plot.pr_curve(data(50, 2)["y"], data(50, 2)["p"], split_table=True)})
    run.finish()
    out["rows"] = [_refs(r) for r in wandb_rows(tmp)] if which == "wandb" else nbtracker_rows(run.path)
    return out


def _refs(row: dict) -> dict:
    """A wandb history row with each table reference (its fields as nested keys) as one key."""
    bases = [k[:-len("/_type")] for k in row if k.endswith("/_type")]
    out = {k: v for k, v in row.items() if not any(k.startswith(b + "/") for b in bases)}
    out.update({b: row[b + "/_type"] for b in bases})
    return out


def max_diff(a: list, b: list) -> float | str:
    if len(a) != len(b):
        return "rows differ"
    worst = 0.0
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, (int, float)) and isinstance(y, (int, float)):
                worst = max(worst, abs(x - y))
            elif x != y:
                return f"{x!r} != {y!r}"
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--side")
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--peers-python", help="wandb's interpreter (default: bench/.venv-integrations)")
    args = ap.parse_args()
    if args.side:
        print(json.dumps(side(args.side, args.n, args.k), default=lambda o: o.item()
                         if hasattr(o, "item") else str(o)))
        return
    here = Path(__file__)
    extra = ["--n", str(args.n), "--k", str(args.k)]
    ours = run_side(here, "nbtracker", *extra)
    theirs = run_side(here, "wandb", *extra, python=args.peers_python)
    print(f"{'chart':26} {'rows':>5} {'wandb':>5}  columns, preset, fields and texts  max |Δ| of values")
    for name, a in ours["charts"].items():
        b = theirs["charts"][name]
        same = all(a[f] == b[f] for f in ("columns", "spec", "fields", "string_fields"))
        d = max_diff(a["data"], b["data"])
        print(f"{name:26} {len(a['data']):>5} {len(b['data']):>5}  {'same' if same else 'DIFFER':34} "
              f"{d if isinstance(d, str) else f'{d:.4g}'}")
    print(f"\ntime to make a chart of {args.n} samples, {args.k} classes (median of 3)")
    for name in ours["time"]:
        a, b = ours["time"][name], theirs["time"][name]
        print(f"  {name:18} nbtracker {a * 1000:8.1f} ms   wandb {b * 1000:8.1f} ms")
    print("\nkeys and steps a run logs (nbtracker: the chart under its key; wandb: <key>_table)")
    print_compare(compare(key_steps(ours["rows"]), key_steps(theirs["rows"])))


if __name__ == "__main__":
    main()
