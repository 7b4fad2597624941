"""LoRA through PEFT, so a saved adapter loads in any PEFT setup.

The head modules are passed as ``modules_to_save``: they train in full and are stored in
the adapter file next to the LoRA matrices. Target modules are resolved by loralab (presets
per family, dot-bounded names, ``all-linear``) and handed to PEFT as qualified names, so PEFT
adapts exactly the layers the user was shown.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, cast

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from loralab.config import TrainConfig
from loralab.errors import RunError
from loralab.methods.base import register
from loralab.methods.lora.top_layers import LoraMethod
from loralab.methods.neural import TransformerClassifier
from loralab.models.loading import LoadedModel
from loralab.models.targets import lora_targets

PEFT_INITS: dict[str, Any] = {"normal": "gaussian", "kaiming": True, "pissa": "pissa"}
PISSA_INITIAL = "loralab_pissa_initial"


def lora_config(loaded: LoadedModel, config: TrainConfig):
    from peft import TaskType  # importing PEFT takes seconds; only LoRA runs need it

    targets = lora_targets(loaded.model, loaded.head_modules, config)
    return adapter_config(
        targets, config, task_type=TaskType.SEQ_CLS, modules_to_save=list(loaded.head_modules)
    )


def adapter_config(targets: list[str], config: TrainConfig, **extra: Any):
    """PEFT's ``LoraConfig`` for the layers ``targets`` with every LoRA setting of ``config``."""
    from peft import LoraConfig  # importing PEFT takes seconds; only LoRA runs need it

    return LoraConfig(
        r=config.lora_rank,
        lora_alpha=cast(Any, config.lora_alpha),  # PEFT annotates an int; a float alpha works
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        bias=cast(Any, config.lora_bias),  # checked by TrainConfig
        # loralab's "normal" init is PEFT's "gaussian" (A ~ N(0, 1/rank²)); "kaiming" is PEFT's default.
        init_lora_weights=PEFT_INITS[config.lora_init_used],
        use_rslora=config.use_rslora,
        use_dora=config.use_dora,
        **extra,
    )


@register
class PeftLora(LoraMethod):
    """Low-rank adapters on the chosen linear layers; encoder frozen; head trains."""

    name = "lora"
    summary = "LoRA adapters through PEFT (encoder frozen, head trains)"
    cost_rank = 5
    default_lr = 1e-3
    default_epochs = 3
    ladder_position = 50

    def prepare(self, loaded: LoadedModel, config: TrainConfig) -> nn.Module:
        from peft import get_peft_model, get_peft_model_state_dict  # PEFT takes seconds to import

        peft_config = lora_config(loaded, config)
        model = get_peft_model(loaded.model, peft_config)
        # Record the model's public name, not the local folder it was read from, so the
        # adapter points at the same base model on any machine.
        model.peft_config["default"].base_model_name_or_path = config.model
        if config.lora_init_used == "pissa":
            initial = get_peft_model_state_dict(model)
            setattr(model, PISSA_INITIAL, {k: v.clone() for k, v in initial.items() if ".lora_" in k})
        return model

    def save_weights(self, classifier: TransformerClassifier, folder: Path) -> None:
        with warnings.catch_warnings():
            # PEFT looks up the base model's config to see whether the vocabulary changed;
            # it never does here (embeddings are frozen), and the lookup may be offline.
            warnings.simplefilter("ignore", UserWarning)
            classifier.model.save_pretrained(folder, save_embedding_layers=False)
        initial = getattr(classifier.model, PISSA_INITIAL, None)
        if initial is not None:
            save_pissa_as_lora(folder, initial)

    def load_weights(self, labels: list[str], folder: Path, config: TrainConfig) -> nn.Module:
        from peft import PeftModel  # importing PEFT takes seconds; only LoRA runs need it

        if not (folder / "adapter_config.json").exists():
            raise RunError(f"{folder}: the saved adapter (adapter_config.json) is missing.")
        loaded = self.base(labels, config)
        return PeftModel.from_pretrained(loaded.model, folder)


def save_pissa_as_lora(folder: Path, initial: dict) -> None:
    """Rewrite a saved PiSSA adapter as plain LoRA on the unmodified base model.

    The trained update relative to W0 is ``s·(B A − B0 A0) = s·[B | −B0] [A ; A0]``, a rank-2r
    LoRA with the same scaling. PEFT's own conversion (``save_pretrained(...,
    path_initial_model_for_weight_conversion=…)``) keeps only the LoRA matrices and so drops
    the classification head (``modules_to_save``); this one keeps every other tensor as saved.
    """
    weights, config_path = folder / "adapter_model.safetensors", folder / "adapter_config.json"
    state = load_file(str(weights))
    for key, value in state.items():
        if ".lora_A." in key:
            state[key] = torch.cat([value, initial[key]], dim=0)
        elif ".lora_B." in key:
            state[key] = torch.cat([value, -initial[key]], dim=1)
    save_file({k: v.contiguous() for k, v in state.items()}, str(weights), metadata={"format": "pt"})
    config = json.loads(config_path.read_text())
    config["lora_alpha"] *= 2**0.5 if config.get("use_rslora") else 2
    config["r"] *= 2
    config["init_lora_weights"] = True
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
