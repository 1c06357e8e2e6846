"""PyTorch Lightning: `NbtrackerLogger`, a Lightning logger that records to nbtracker.

    from nbtracker.integrations.lightning import NbtrackerLogger
    trainer = Trainer(logger=NbtrackerLogger(project="mnist"), ...)

Built on `lightning.pytorch` when the `lightning` package is installed, else on
`pytorch_lightning`: the same import serves both. With both installed, a `pytorch_lightning`
Trainer takes this logger too (both packages share the process rank and call the same logger
methods); `nbtracker.integrations.pytorch_lightning.NbtrackerLogger` is the one that is also an
instance of `pytorch_lightning.loggers.Logger` (LightningCLI checks that). What it logs: see
`nbtracker.integrations._lightning`.
"""

from __future__ import annotations

from ._lightning import EXTRA_HINT, LoggerCore

try:
    from lightning.pytorch.loggers import Logger as _Logger

    _PL, _FABRIC = "lightning.pytorch", "lightning.fabric"
except ImportError:
    try:
        from pytorch_lightning.loggers import Logger as _Logger

        _PL, _FABRIC = "pytorch_lightning", "lightning_fabric"
    except ImportError:
        raise ImportError(f"NbtrackerLogger needs PyTorch Lightning: {EXTRA_HINT}") from None

__all__ = ["NbtrackerLogger"]


class NbtrackerLogger(LoggerCore, _Logger):
    __doc__ = LoggerCore.__doc__
    _pl_name = _PL
    _fabric_name = _FABRIC
