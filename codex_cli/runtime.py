"""Process-wide torch settings: intra-op threads and seeding. Imports torch lazily."""

from __future__ import annotations

import os
import random


def configure_threads(threads: int) -> int:
    """Set torch's intra-op thread count (0 keeps torch's default); return the count in use."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) from one integer."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
