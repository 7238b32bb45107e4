"""Named tensors: gradients, buffers, masks and samples keyed by parameter or buffer name."""

import torch

Tensors = dict[str, torch.Tensor]
