"""Fold adapters into their base layers, giving a plain transformers model.

Used by the low-rank analysis (which compares weights layer by layer) and by ``loralab
export``. PEFT's ``merge_and_unload`` does the work for PEFT adapters, including putting the
trained head (``modules_to_save``) in place; loralab's own layers merge and then step aside.
"""

from __future__ import annotations

from typing import Any, cast

from torch import nn

from loralab.methods.lora.layer import LoRALinear
from loralab.models.surgery import replace

PEFT_PREFIX = "base_model.model."


def merge_adapters(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """``(plain_model, adapted_layer_names)``; the input model is merged in place.

    A model without adapters (a fully fine-tuned run) comes back as it is, with no names.
    """
    try:
        from peft import PeftModel  # importing PEFT takes seconds; only adapter runs need it
        from peft.tuners.lora import LoraLayer

        is_peft = isinstance(model, PeftModel)
    except ImportError:  # PEFT is an extra; without it there are no PEFT models to merge
        is_peft = False

    if is_peft:
        names = [n.removeprefix(PEFT_PREFIX) for n, m in model.named_modules() if isinstance(m, LoraLayer)]
        return cast(Any, model).merge_and_unload(safe_merge=True), names
    scratch = {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}
    for layer in scratch.values():
        if not layer.merged:
            layer.merge()
    replace(model, {name: layer.base_layer for name, layer in scratch.items()})
    return model, list(scratch)
