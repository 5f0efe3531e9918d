"""Process-wide set-up shared by every stage: seeding, determinism, device, quiet libraries."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup(seed: int = 0) -> torch.device:
    """Seed, enable deterministic kernels, silence hub/network noise; return the compute device.

    On CPU the pipeline is byte-for-byte reproducible. On CUDA, deterministic algorithms are requested
    too (``warn_only`` because a few kernels have no deterministic variant).
    """
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.use_deterministic_algorithms(True, warn_only=True)
    seed_everything(seed)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
