"""One attack step recorded as a CUDA graph and replayed: the same kernels, without Python or
launch overhead per kernel (an attack step of a small model is thousands of small kernels).

The step must be capturable: static shapes, no reads of the device from the host, no tensors
made from host data, and its state updated in place (``gradinv.attacks.engine``). As torch's
notes on CUDA graphs ask, the first steps run on a side stream (``warm_up``) before the capture.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def warm_up(step: Callable[[], None]) -> None:
    """Run ``step`` eagerly on a side stream, ordered with the current stream on both sides."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()
    torch.cuda.current_stream().wait_stream(side)


class CapturedStep:
    """``step`` captured once (its kernels recorded, not run); ``replay`` runs them."""

    def __init__(self, step: Callable[[], None]) -> None:
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            step()

    def replay(self) -> None:
        self.graph.replay()
