"""The one device parser: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``, as every CLI takes it.

    parse_device("CUDA:1")      -> "cuda:1"     (spelling checked, nothing probed)
    resolve_device("auto")      -> torch.device("cuda", 0) where PyTorch sees a GPU, else cpu
    resolve_device("cuda:3")    -> DeviceError when there is no such GPU (says what to do)
"""
from __future__ import annotations

import re

__all__ = ["DeviceError", "CudaUnavailableError", "parse_device", "resolve_device"]

_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class DeviceError(ValueError):
    """A device that is misspelt or not present on this machine."""


class CudaUnavailableError(DeviceError, RuntimeError):
    """CUDA was asked for where PyTorch sees none (or not that many GPUs)."""


def parse_device(text) -> str:
    """Normalise a device string; DeviceError naming the accepted forms otherwise."""
    s = str(text if text is not None else "auto").strip().lower()
    if not _PATTERN.match(s):
        raise DeviceError(f"--device must be cpu, cuda, cuda:N or auto, got {text!r}")
    return s


def resolve_device(text, *, prefer_cuda: bool = True):
    """A concrete ``torch.device`` for ``text`` on this machine (``auto``: the current CUDA GPU
    when there is one and ``prefer_cuda``, else the CPU). Raises CudaUnavailableError for a GPU
    that is not there."""
    import torch

    s = parse_device(text)
    if s == "auto":
        s = "cuda" if prefer_cuda and torch.cuda.is_available() else "cpu"
    dev = torch.device(s)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CudaUnavailableError(
                f"--device {text}: PyTorch sees no CUDA GPU here (torch {torch.__version__}, "
                "torch.cuda.is_available() is False): use --device cpu, or a CUDA build of PyTorch "
                "on a machine with an NVIDIA GPU")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise CudaUnavailableError(f"--device {text}: only {count} CUDA device(s) exist "
                                       f"(cuda:0..cuda:{count - 1})")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev
