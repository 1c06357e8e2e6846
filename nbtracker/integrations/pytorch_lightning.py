"""`NbtrackerLogger` for the `pytorch_lightning` package (the older name of Lightning):

    from nbtracker.integrations.pytorch_lightning import NbtrackerLogger
    trainer = pytorch_lightning.Trainer(logger=NbtrackerLogger(project="mnist"), ...)

A subclass of `pytorch_lightning.loggers.Logger`; without `pytorch_lightning` installed, the
`lightning.pytorch` one (`nbtracker.integrations.lightning`). What it logs: see
`nbtracker.integrations._lightning`.
"""

from __future__ import annotations

from ._lightning import EXTRA_HINT, LoggerCore

try:
    from pytorch_lightning.loggers import Logger as _Logger
except ImportError:
    try:
        from .lightning import NbtrackerLogger
    except ImportError:
        raise ImportError(f"NbtrackerLogger needs PyTorch Lightning: {EXTRA_HINT}") from None
else:

    class NbtrackerLogger(LoggerCore, _Logger):  # type: ignore[no-redef]
        __doc__ = LoggerCore.__doc__
        _pl_name = "pytorch_lightning"
        _fabric_name = "lightning_fabric"

__all__ = ["NbtrackerLogger"]
