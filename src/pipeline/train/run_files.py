"""What a training run writes besides its artifact: the dvclive curves and the resumable checkpoint directory.

The curves are written to a temporary sibling of their directory (``.<name>.tmp-<pid>``, the convention of
:func:`pipeline.core.files.atomic_dir`) and moved into place by :meth:`RunFiles.done` once the stage has
written its artifact: a killed stage leaves the previous run's curves as they were, never a truncated log.
A temporary directory left by a SIGKILL is removed by the next run.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.files import clean_stale_tmp, write_json
from pipeline.core.runtime import is_main


@dataclass
class RunFiles:
    """What a training run writes besides its artifact (each optional)."""

    log_dir: Path | None = None
    """dvclive directory for the curves: ``plots/metrics/train/{loss,lr,epoch_loss}.tsv`` and
    ``plots/metrics/eval/<metric>.tsv`` (column ``step`` = optimizer steps done). No ``metrics.json``
    summary: every file under ``metrics/train`` is a plot (dvc.yaml declares the directory). Written
    to :attr:`staging` during the run, moved here by :meth:`done`."""
    checkpoint: Path | None = None
    """Resumable checkpoint directory, used when ``TrainArgs.checkpoint_every > 0``."""

    @classmethod
    def beside(cls, out: str | os.PathLike, log_dir: str | os.PathLike | None = None) -> RunFiles:
        """Files of a stage writing ``out``: the checkpoint is ``<out>.ckpt``, beside (not inside) it."""
        out = Path(out)
        return cls(Path(log_dir) if log_dir else None, out.with_name(out.name + ".ckpt"))

    @property
    def staging(self) -> Path | None:
        """Where this process writes the curves until :meth:`done`: ``.<name>.tmp-<pid>`` beside ``log_dir``."""
        if self.log_dir is None:
            return None
        return self.log_dir.parent / f".{self.log_dir.name}.tmp-{os.getpid()}"

    def done(self) -> None:
        """After the artifact is written (rank 0; other ranks never write): remove the checkpoint and move
        the staged curves into ``log_dir``, replacing the previous run's. A run that logged no curves (a
        pruning method that does not train) gets an empty list of step records, a valid empty plot, so the
        stage's declared curves directory exists."""
        if not is_main():
            return
        if self.checkpoint is not None:
            shutil.rmtree(self.checkpoint, ignore_errors=True)
        if self.log_dir is None:
            return
        staged = self.staging
        if not staged.is_dir():
            staged.mkdir(parents=True)
            write_json(staged / "steps.json", [])
        if self.log_dir.exists():
            shutil.rmtree(self.log_dir)
        os.replace(staged, self.log_dir)


class Curves:
    """dvclive logging on rank 0 into :attr:`RunFiles.staging` (a no-op elsewhere or without a directory).

    No timestamps are written, so the same run gives the same files (they are git-tracked outputs).
    """

    def __init__(self, files: RunFiles, main: bool):
        """Start empty curves; ``main``: whether this process is rank 0 (the only one that writes)."""
        self.live, self.dir = None, files.staging if main else None
        if self.dir is not None:
            clean_stale_tmp(files.log_dir)  # killed runs' leftovers, and this process's earlier attempt
            from dvclive import Live

            self.live = Live(dir=str(self.dir), dvcyaml=False, save_dvc_exp=False, report=None)

    def log(self, step: int, values: dict[str, float]) -> None:
        """Append one row ``step, value`` to each named curve (e.g. ``train/loss``); an undefined metric
        (``None``, e.g. the correlation of a constant prediction) leaves no row rather than a made-up number."""
        if self.live is None:
            return
        self.live.step = step
        for name, value in values.items():
            if value is not None:
                self.live.log_metric(name, value)

    def replay(self, step_log: list[list], history: list[dict]) -> None:
        """Log the rows of a resumed run's earlier steps and epochs, as first logged."""
        for step, loss, lr in step_log:
            self.log(step, {"train/loss": loss, "train/lr": lr})
        for record in history:
            self.log(record["step"], epoch_values(record))

    def discard(self) -> None:
        """Remove the staged curves (the run failed: the previous curves stay the stage's curves)."""
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def epoch_values(record: dict) -> dict[str, float]:
    """An epoch record ``{"epoch", "loss", "step", **metrics}`` as curves: ``train/epoch_loss``, ``eval/<metric>``."""
    values = {"train/epoch_loss": record["loss"]}
    values.update({f"eval/{k}": v for k, v in record.items() if k not in ("epoch", "loss", "step")})
    return values
