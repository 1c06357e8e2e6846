"""A tiny LightningModule on synthetic data, for tests/integrations/test_lightning.py (also run in
child processes and notebook kernels: importable with this folder on sys.path)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

try:
    import lightning.pytorch as pl
except ImportError:  # only the older package name installed
    import pytorch_lightning as pl


class _Tiny:
    """A linear model; `fail_at` / `interrupt_at` raise in that global step."""

    def __init__(self, lr: float = 0.1, hidden: int = 4, fail_at: int | None = None,
                 interrupt_at: int | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(4, 1)

    def forward(self, x):
        return self.net(x)

    def _loss(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def training_step(self, batch, batch_idx):
        if self.global_step == self.hparams.fail_at:
            raise RuntimeError("a bug in training_step")
        if self.global_step == self.hparams.interrupt_at:
            raise KeyboardInterrupt
        loss = self._loss(batch)
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self._loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test/loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def module_class(package=pl) -> type:
    """The tiny model as a LightningModule of `package` (lightning.pytorch or pytorch_lightning)."""
    return type("Tiny", (_Tiny, package.LightningModule), {})


Tiny = module_class()


def loader(n: int = 32, batch_size: int = 8, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x.sum(1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def trainer(logger, package=pl, **kwargs):
    """A `package` Trainer: 2 epochs of 4 steps on the CPU, every step logged."""
    args = dict(accelerator="cpu", devices=1, max_epochs=2, logger=logger,
                enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
                num_sanity_val_steps=0, enable_checkpointing=False)
    args.update(kwargs)
    return package.Trainer(**args)
