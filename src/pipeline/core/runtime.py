"""Process-wide set-up shared by every stage: seeding, determinism, device, processes, quiet libraries."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from pipeline.core.errors import PipelineError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` when not launched with several processes."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True on the process that writes artifacts, logs and checkpoints (rank 0)."""
    return world()[0] == 0


def _init_processes() -> torch.device | None:
    """Join the process group when started by ``accelerate launch``/torchrun (``WORLD_SIZE`` > 1).

    accelerate's ``PartialState`` picks the backend (NCCL on GPUs, gloo on CPU) and this process's GPU.
    Returns its device, or None for a single process.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available()).device


def setup(seed: int = 0, launch=None) -> torch.device:
    """Seed, enable deterministic kernels, silence hub/network noise, join the process group; return the device.

    On CPU the pipeline is byte-for-byte reproducible. On CUDA, deterministic algorithms are requested
    too (``warn_only`` because a few kernels have no deterministic variant).

    Args:
        launch: the ``launch`` params of a training stage (:class:`pipeline.config.args.LaunchParams`): the
            number of processes actually started must equal ``launch.num_processes`` (a mismatch means the
            dvc.yaml cmd and params disagree).
    """
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = _init_processes()
    if launch is not None and world()[1] != launch.num_processes:
        raise PipelineError(
            f"params.yaml: 'launch.num_processes' is {launch.num_processes} but {world()[1]} process(es) "
            f"were started (launch.command: '{launch.command}')"
        )
    seed_everything(seed)
    if device is not None:
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``TrainArgs.precision`` on ``device``; None means plain fp32.

    ``auto`` picks bf16 only on a CUDA device that supports it, so the CPU default stays fp32 (and
    byte-reproducible); ``bf16`` forces autocast (also on CPU, where it is slow but works).
    """
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None
