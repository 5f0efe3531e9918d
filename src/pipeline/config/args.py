"""Settings shared by several stages: the training loop, how training stages are launched.

Method-specific settings live beside their method (e.g. ``pipeline.prune.magnitude.MagnitudeParams``), the
architecture beside the model families it names (:class:`pipeline.models.build.ArchParams`); every dataclass here
and there is read by :func:`pipeline.config.loader.load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


SEED_LIMIT = 2**32
"""Seeds are in ``[0, 2**32)``: what numpy accepts, and far from the int64 overflow of torch's generators
(the loop adds the epoch, DARE multiplies the seed)."""


def check_seed(seed: int, name: str = "seed") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``0 <= seed < 2**32``."""
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{name} must be in [0, 2**32), got {seed}")


@dataclass
class TrainArgs:
    """Optimisation settings shared by every training stage."""

    epochs: float = 1.0
    """Passes over the training split (fractions allowed)."""
    batch_size: int = 32
    lr: float = 5e-4
    """Peak learning rate of AdamW (linear warm-up, then linear decay)."""
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    """Seed for data order, dropout and new heads."""
    l1: float = 0.0
    """Weight of an L1 penalty on the encoder's Linear weights (mean absolute value), 0 disables it:
    pushes weights towards zero so that magnitude pruning afterwards removes less of the function."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """``auto`` (default): bf16 autocast on a CUDA GPU with bf16 support, else plain fp32 (CPU runs stay
    byte-reproducible); ``fp32``: never autocast; ``bf16``: always autocast (slow on CPUs without bf16 units)."""
    grad_accum_steps: int = 1
    """Micro-batches of ``batch_size`` (per process) summed into one optimizer step."""
    compile: bool = False
    """Run the training forward/backward through ``torch.compile`` (a GPU speed setting)."""
    group_by_length: bool = False
    """Batch examples of similar length (sorted within shuffled mega-batches) to cut padding."""
    num_workers: int = -1
    """DataLoader worker processes that collate batches; 0 collates in the training process; -1 (default):
    chosen by device, 0 on a CPU (byte-identical to collating in the loop) and ``min(4, CPUs)`` on a GPU
    (:func:`pipeline.core.runtime.loader_workers`)."""
    checkpoint_every: int = 0
    """Write a resumable checkpoint every this many optimizer steps (``<out>.ckpt``); 0 disables."""
    max_steps: int = 0
    """Stop after this many optimizer steps (0: no cap); the learning-rate schedule (warm-up, decay to 0)
    spans the capped run, and the last epoch run is a partial one."""

    def __post_init__(self):
        if self.epochs <= 0 or self.batch_size <= 0 or self.lr <= 0:
            raise ValueError("epochs, batch_size and lr must be > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm <= 0:  # gradients are always clipped: 0 would stop all learning
            raise ValueError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        check_seed(self.seed)
        if self.l1 < 0:
            raise ValueError("l1 must be >= 0")
        if self.grad_accum_steps < 1:
            raise ValueError("grad_accum_steps must be >= 1")
        if self.num_workers < -1:
            raise ValueError(f"num_workers must be >= 0, or -1 to choose by device, got {self.num_workers}")
        if self.checkpoint_every < 0 or self.max_steps < 0:
            raise ValueError("checkpoint_every and max_steps must be >= 0")


@dataclass
class LaunchParams:
    """How the training stages are started (the ``launch`` section, templated into their dvc.yaml cmd)."""

    command: str = "python"
    """The launcher before the stage script: ``python`` or ``accelerate launch [--multi_gpu] --num_processes N``.
    It is templated into the training stages' ``cmd`` in ``dvc.yaml``, which DVC runs through the shell: the
    shell interprets it (quotes, variables, ``;``), so it can run any command."""
    num_processes: int = 1
    """Processes ``command`` starts in total (all machines); a stage run under another count fails."""

    def __post_init__(self):
        if self.num_processes < 1:
            raise ValueError("num_processes must be >= 1")
        if self.num_processes > 1 and "accelerate" not in self.command and "torchrun" not in self.command:
            raise ValueError("num_processes > 1 needs command 'accelerate launch ...' (or torchrun)")
