"""What the torch models share: choosing a device, reading a checkpoint, saying why it does not fit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import WeightsError

#: How many names to quote when a checkpoint does not fit.
KEYS_QUOTED = 3


def pick_device(requested: str | None) -> torch.device:
    """``requested`` ("cpu", "cuda:1") if given, else CUDA when present, else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def read_state_dict(path: Path, model: str) -> Mapping[str, torch.Tensor]:
    """The tensors saved at ``path`` (a training checkpoint's ``state_dict`` is unwrapped).

    Raises :class:`WeightsError` with one line naming ``model`` when the file is not one.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad pickle/zip
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise WeightsError(f"cannot read {model} weights: the file is not a PyTorch checkpoint",
                           detail=f"{path}: {first_line}") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a training checkpoint wrapping the weights
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{model} weights are not a state dict of tensors", detail=f"weights file: {path}")
    return state


def quoted(keys: list[str]) -> str:
    more = f" and {len(keys) - KEYS_QUOTED} more" if len(keys) > KEYS_QUOTED else ""
    return ", ".join(keys[:KEYS_QUOTED]) + more


def state_dict_mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> str | None:
    """A one-line description of how ``given`` differs from ``expected`` in keys and shapes, or None."""
    missing = [key for key in expected if key not in given]
    unexpected = [key for key in given if key not in expected]
    reshaped = [f"{key} {tuple(given[key].shape)} instead of {tuple(expected[key].shape)}"
                for key in expected if key in given and given[key].shape != expected[key].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({quoted(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({quoted(unexpected)})")
    if reshaped:
        problems.append(f"{len(reshaped)} keys of another shape ({quoted(reshaped)})")
    return "; ".join(problems) or None
