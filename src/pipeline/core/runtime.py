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
    """Seed, choose the numerics for the device, silence hub/network noise, join the process group; return the
    device.

    - CPU: deterministic algorithms (``torch.use_deterministic_algorithms(True, warn_only=True)``), so the same
      params give byte-identical artifacts on the same machine type and thread count.
    - CUDA: TF32 tensor-core matmuls and convolutions (``set_float32_matmul_precision("high")``, cuDNN TF32);
      deterministic algorithms are *not* requested: on CUDA they would not make a run reproducible (the
      attention backward and ``index_add`` have no deterministic kernel, so ``warn_only`` would only warn)
      while ``use_deterministic_algorithms`` also turns on ``fill_uninitialized_memory`` (every
      ``torch.empty`` written once more). GPU runs are reproducible to float tolerance, not bit for bit.

    Args:
        launch: the ``launch`` params of a training stage (:class:`pipeline.config.args.LaunchParams`): the
            number of processes actually started must equal ``launch.num_processes`` (a mismatch means the
            dvc.yaml cmd and params disagree).

    Raises:
        PipelineError: the started process count differs from ``launch.num_processes``.
    """
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    device = _init_processes()
    if launch is not None and world()[1] != launch.num_processes:
        raise PipelineError(
            f"params.yaml: 'launch.num_processes' is {launch.num_processes} but {world()[1]} process(es) "
            f"were started (launch.command: '{launch.command}')"
        )
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    set_numerics(device)
    seed_everything(seed)
    return device


def set_numerics(device: torch.device) -> None:
    """Deterministic kernels on the CPU, TF32 matmuls on CUDA (see :func:`setup` for why)."""
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for fp32 matmuls (allow_tf32)
        torch.backends.cudnn.allow_tf32 = True
    else:
        torch.use_deterministic_algorithms(True, warn_only=True)


def loader_workers(num_workers: int, device: torch.device) -> int:
    """DataLoader worker processes for ``TrainArgs.num_workers``: the value itself when >= 0; for -1, 0 on a
    CPU (collating in the training process keeps CPU runs byte-identical and leaves the cores to the model)
    and on a GPU ``min(4, CPUs / processes on this machine)``, at least 1 (collation overlaps the GPU's work;
    ``LOCAL_WORLD_SIZE`` is set by ``accelerate launch``/torchrun)."""
    if num_workers >= 0:
        return num_workers
    if device.type != "cuda":
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(4, max(1, cpus // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


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
