"""Layer surgery as a public API (seed 002 tasks 1, 3, 4 and 9).

``extract`` and ``replace`` are inverses: ``replace(model, extract(model, targets))`` leaves the
model as it was, and replacing with wrapped or perturbed layers changes exactly those layers.
Targets resolve through the same presets and dot-bounded names as the PEFT backend.

>>> layers = extract(model, ["q_lin", "v_lin"])                      # doctest: +SKIP
>>> sum(num_trainable_parameters(layer) for layer in layers.values()) # doctest: +SKIP
7087104
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from loralab.models.loading import head_module_names
from loralab.models.targets import linear_modules, resolve_targets


def num_trainable_parameters(model: nn.Module) -> int:
    """Parameters that training would change (``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def extract(model: nn.Module, targets: list[str] | None = None) -> dict[str, nn.Linear]:
    """Qualified name → linear layer for each target (default: the family preset)."""
    heads = head_module_names(model)
    names = resolve_targets(model, heads, targets)
    layers = linear_modules(model, heads)
    return {name: layers[name] for name in names}


def replace(model: nn.Module, named_layers: Mapping[str, nn.Module]) -> nn.Module:
    """Put each module at its qualified name (the inverse of :func:`extract`); returns ``model``."""
    for name, layer in named_layers.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer)
    return model
