"""Count what a piece of torch code dispatches: aten operations and reads of the device.

On a GPU every aten operation that is no view is a kernel launch, and a read of a tensor's
value by the host (``item``, ``float``, ``bool``, ``tolist``, a data-dependent shape such as
``nonzero``, a tensor made from Python data) makes the host wait for the device. Counting
them on the CPU tells how an attack step will behave on a GPU without one, and a step that
reads nothing can be captured as a CUDA graph. ``DispatchCensus`` is a ``TorchDispatchMode``:
while it is active it counts every operation dispatched on this thread.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
#: Operations whose result needs the tensor's values on the host.
HOST_READS = {
    aten._local_scalar_dense,
    aten.is_nonzero,
    aten.equal,
    aten.nonzero,
    aten.masked_select,
    aten.allclose,
    aten.lift_fresh,
    aten.lift_fresh_copy,
    aten._unique2,
    aten.unique_consecutive,
}


class DispatchCensus(TorchDispatchMode):
    """Counts aten operations (all, and those that are no views: kernels on a GPU) and host
    reads, with the names of the reads."""

    def __init__(self) -> None:
        super().__init__()
        self.operations = 0
        self.kernels = 0
        self.reads: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.operations += 1
        if not func.is_view:
            self.kernels += 1
        if func.overloadpacket in HOST_READS:
            self.reads[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))

    @property
    def host_reads(self) -> int:
        return sum(self.reads.values())
