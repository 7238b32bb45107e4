"""Quantization: each shared tensor rounded to the chosen precision."""

from __future__ import annotations

import pytest
import torch

from gradinv.defenses.quantize import Quantize
from gradinv.errors import ConfigError


def test_quantize_rounds_each_tensor_to_its_precision():
    g = torch.tensor([0.5, -1.27, 0.004, 1e-5])
    shared = Quantize("int8").protect({"w": g}, torch.nn.Identity())["w"]
    scale = 1.27 / 127  # the largest magnitude maps to 127
    assert torch.allclose(shared, torch.tensor([50 * scale, -1.27, 0.0, 0.0]), atol=1e-7)
    half = Quantize("float16").protect({"w": g}, torch.nn.Identity())["w"]
    assert half.dtype == torch.float32 and torch.equal(half, g.half().float())
    assert Quantize().perturbs_update
    with pytest.raises(
        ConfigError, match="defense.precision must be 'float16', 'bfloat16' or 'int8', got 'int4'."
    ):
        Quantize("int4")
