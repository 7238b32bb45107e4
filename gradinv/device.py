"""The device a run computes on, named in one log line, with float32 kept full precision there.

``trainer.accelerator`` picks it as Lightning does (``auto``: a GPU when there is one, else the
CPU). On CUDA, TensorFloat-32 is switched off for matrix products and convolutions: the
attacks match gradients whose distances reach 1e-5, which TF32's 10-bit mantissa would blur,
and the papers' code ran in full float32.
"""

from __future__ import annotations

import logging

import lightning as L
import torch

from gradinv.errors import ConfigError

log = logging.getLogger("gradinv")


def run_device(accelerator: str) -> torch.device:
    """The device of ``trainer.accelerator``; one sentence when that accelerator is absent."""
    try:
        device = L.Fabric(accelerator=accelerator, devices=1).device
    except (
        RuntimeError,
        ValueError,
        ImportError,
    ) as error:  # Lightning's MisconfigurationException is one
        raise ConfigError(
            f"trainer.accelerator={accelerator} is not available here ({error}); use "
            "trainer.accelerator=cpu, or auto, which takes a GPU when there is one and the CPU otherwise."
        ) from None
    full_float32(device)
    log.info("gradinv runs on %s.", describe(device))
    return device


def full_float32(device: torch.device) -> None:
    """On CUDA, matrix products and convolutions in full float32 (no TensorFloat-32)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def describe(device: torch.device) -> str:
    """The device in words: 'cpu (2 threads)' or 'cuda:0 (NVIDIA H200)'."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)
