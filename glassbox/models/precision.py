"""Where bfloat16 pays: models that opt in compute in bfloat16 under autocast only where the hardware
does it natively; elsewhere they stay in float32. Weights, gradients and optimizer state stay float32."""
from __future__ import annotations

import contextlib

import torch


def native_bf16(device: torch.device) -> bool:
    """Does this device compute bfloat16 matmuls and convolutions natively (faster than float32)?"""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()  # tensor cores: Ampere and later
    if device.type != "cpu":
        return False
    try:
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    except AttributeError:  # an older torch without the probes
        return False


_NATIVE: dict[str, bool] = {}  # device type -> native bfloat16? (asked once per process)


def compute_dtype(wanted: bool, device: torch.device) -> torch.dtype:
    """bfloat16 when the model asks for it and `device` computes it natively, else float32."""
    if not wanted:
        return torch.float32
    if device.type not in _NATIVE:
        _NATIVE[device.type] = native_bf16(device)
    return torch.bfloat16 if _NATIVE[device.type] else torch.float32


def autocast(wanted: bool, device: torch.device):
    """The context a forward pass runs in: bfloat16 autocast where it pays, else nothing."""
    if compute_dtype(wanted, device) == torch.bfloat16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """Logits out of a forward: bfloat16 ones as float32; a float64 model's stay float64 (glassbox explain checks
    gradients against finite differences, which float32 rounding would blur)."""
    return logits if logits.dtype == torch.float64 else logits.float()
