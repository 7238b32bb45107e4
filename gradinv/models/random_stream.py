"""Counter-based uniforms: a pure function of (problem seed, step, stream, element).

An attacker whose model samples at every step (PRECODE's bottleneck) needs draws that do not
depend on the device, on how problems are grouped into calls, or on a generator's state, and
that a CUDA graph can replay: each value is an integer hash of its coordinates, computed with
ordinary tensor operations (int64 arithmetic kept below 2^63, so it is exact on every device).
The hash is a 32-bit integer mixer (two multiply-xorshift rounds, the constant 0x45d9f3b);
statistical quality is that of such mixers, ample for simulating a layer's noise.
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
MULTIPLIER = 0x45D9F3B  # below 2^27: products of 32-bit values stay below 2^63


def mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash, elementwise, of int64 values in [0, 2^32)."""
    x = (((x >> 16) ^ x) * MULTIPLIER) & MASK32
    x = (((x >> 16) ^ x) * MULTIPLIER) & MASK32
    return (x >> 16) ^ x


def uniforms(seeds: torch.Tensor, counters: torch.Tensor, stream: int, count: int) -> torch.Tensor:
    """``count`` uniforms in (0, 1) per problem, float64, shaped (problems, count).

    ``seeds`` and ``counters`` (int64, one per problem) and ``stream`` (one per kind of draw)
    select the sequence; equal coordinates give equal values on any device.
    """
    key = mix(mix(seeds & MASK32) ^ ((seeds >> 32) & MASK32))
    key = mix(key ^ mix((counters & MASK32) ^ mix(torch.full_like(counters, stream))))
    index = torch.arange(count, device=seeds.device, dtype=torch.int64)
    bits = mix(mix(index) ^ key[:, None])
    return ((bits >> 8).double() + 0.5) * 2.0**-24


def standard_normals(
    seeds: torch.Tensor, counters: torch.Tensor, stream: int, count: int
) -> torch.Tensor:
    """``count`` standard normal values per problem (Box-Muller on two uniforms), float64."""
    u = uniforms(seeds, counters, stream, 2 * count)
    radius = torch.sqrt(-2.0 * torch.log(u[:, :count]))
    return radius * torch.cos((2.0 * torch.pi) * u[:, count:])
