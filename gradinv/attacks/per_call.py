"""How many problems share one batched call: the CPU's caches or the GPU's free memory decide.

On a CPU a call is bounded by what it forms (``CPU_CALL_ELEMENTS``, about 128 MB of float32):
one huge call ran slower than the loop on every CPU measured. On a CUDA device it is bounded
by memory: as many problems as ``MEMORY_SHARE`` of the device's free memory holds, at the peak
that one problem's step was measured to allocate. A model of which fewer than
``MIN_PER_CALL`` problems fit one call gains nothing from batching (ResNet-18 on the 2-core
CPU: 3 per call; folded 4, 8 or 32 per call, 32 attacks ran 0.6-0.7x as fast as one by one),
so it takes the loop. ``attack.per_call`` overrides the choice.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

CPU_CALL_ELEMENTS = 2**25
MEMORY_SHARE = 0.5  # the rest is left for the run's other tensors and the allocator's slack
MIN_PER_CALL = 4


def problems_per_call(entries: int, device: torch.device, step_bytes: Callable[[], int]) -> int:
    """Problems per batched call, each forming ``entries`` values per step; ``step_bytes``
    measures one problem's step on ``device`` (called on CUDA devices only)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(1, int(free * MEMORY_SHARE) // max(1, step_bytes()))
    return max(1, CPU_CALL_ELEMENTS // max(1, entries))


def peak_bytes(step: Callable[[], object], device: torch.device) -> int:
    """The most a call of ``step`` allocates at once on a CUDA ``device``, beyond what was
    allocated before it (graph, gradients and temporaries)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before
