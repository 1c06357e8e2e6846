"""A short training loop that logs a run to the local store, then reads it back.

    make run        (or: python notebooks/quickstart.py)
"""

import math
import random

import nbtracker as wandb

config = {"lr": 1e-3, "epochs": 5, "batch_size": 64}
run = wandb.init(project="quickstart", config=config, tags=["demo"], notes="a toy model")
wandb.define_metric("val/loss", summary="min")
wandb.define_metric("val/*", step_metric="epoch")

step = 0
for epoch in range(config["epochs"]):
    for batch in range(200):
        loss = 2.0 * math.exp(-step / 300) + random.gauss(0, 0.05)
        wandb.log({"train/loss": loss, "train/acc": 1 - loss / 2.5})
        step += 1
    wandb.log({"epoch": epoch, "val/loss": 2.0 * math.exp(-step / 350) + 0.05})
wandb.run.summary["best_acc"] = 0.97
wandb.finish()

api = wandb.Api()
df = api.run(run.path).history()
print(f"\n{len(df)} rows logged; last train/loss = {df['train/loss'].dropna().iloc[-1]:.3f}")
print(api.runs("quickstart").to_pandas()[["name", "state", "config.lr", "summary.val/loss"]]
      .head())
print(f"\nstored in {run.storage_dir}\ntry: nbtracker runs quickstart; nbtracker show {run.path}")
