"""``lora-scratch``: LoRA through loralab's own layer instead of PEFT.

Same targets, head handling and hyperparameters as the PEFT backend, and the same numbers
for the same initial values (a test holds the two to 1e-5); this backend is the one the
low-rank analysis reads, since every adapter is a plain module with ``delta_weight()``.
The adapter and the head are saved together in ``adapter.safetensors``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from safetensors.torch import save_file
from torch import nn

from loralab.config import TrainConfig
from loralab.errors import LoralabError, RunError
from loralab.methods.base import register
from loralab.methods.lora.layer import LoRALinear
from loralab.methods.lora.top_layers import LoraMethod
from loralab.methods.neural import TransformerClassifier, load_weights_file
from loralab.models.loading import LoadedModel
from loralab.models.surgery import replace
from loralab.models.targets import linear_modules, lora_targets

ADAPTER_FILE = "adapter.safetensors"


def _in(name: str, modules: list[str]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def inject_lora(model: nn.Module, head_modules: list[str], config: TrainConfig) -> dict[str, LoRALinear]:
    """Freeze ``model``, wrap the target layers in :class:`LoRALinear`, make the head (and the
    biases ``config.lora_bias`` asks for) trainable; return the adapters by qualified name."""
    targets = lora_targets(model, head_modules, config)
    layers = linear_modules(model, head_modules)
    for param in model.parameters():
        param.requires_grad = False
    adapters = {
        name: LoRALinear(
            layers[name],
            config.lora_rank,
            config.lora_alpha,
            config.lora_dropout,
            init=config.lora_init_used,
            use_rslora=config.use_rslora,
        )
        for name in targets
    }
    replace(model, adapters)
    for name, param in model.named_parameters():
        trainable = _in(name, head_modules) or ".lora_" in name
        if config.lora_bias == "all" and name.endswith(".bias"):
            trainable = True
        if config.lora_bias == "lora_only" and name.endswith(".base_layer.bias"):
            trainable = True
        param.requires_grad = trainable
    return adapters


@register
class ScratchLora(LoraMethod):
    """LoRA adapters from loralab's own layer (seed 002), encoder frozen, head trains."""

    name = "lora-scratch"
    summary = "LoRA with loralab's own layer (same numbers as PEFT; read by the low-rank analysis)"
    cost_rank = 5
    default_lr = 1e-3
    default_epochs = 3

    def check(self, config: TrainConfig) -> None:
        super().check(config)
        if config.use_dora:
            raise LoralabError("--use-dora is available with --method lora (PEFT), not lora-scratch.")

    def prepare(self, loaded: LoadedModel, config: TrainConfig) -> nn.Module:
        inject_lora(loaded.model, loaded.head_modules, config)
        return loaded.model

    def save_weights(self, classifier: TransformerClassifier, folder: Path) -> None:
        model = classifier.model
        state = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
        for name, module in model.named_modules():
            if isinstance(module, LoRALinear):
                state[f"{name}.lora_A"], state[f"{name}.lora_B"] = module.plain_lora()
        save_file({n: t.contiguous() for n, t in state.items()}, str(folder / ADAPTER_FILE))

    def load_weights(self, labels: list[str], folder: Path, config: TrainConfig) -> nn.Module:
        if not (folder / ADAPTER_FILE).exists():
            raise RunError(f"{folder}: the saved adapter {ADAPTER_FILE} is missing.")
        loaded = self.base(labels, config)
        inject_lora(loaded.model, loaded.head_modules, saved_adapter_config(config))
        return load_weights_file(loaded.model, folder / ADAPTER_FILE, config.model)


def saved_adapter_config(config: TrainConfig) -> TrainConfig:
    """The adapter shape a run was saved with: a PiSSA adapter is saved as plain LoRA of twice
    the rank with the same scaling (see :meth:`LoRALinear.plain_lora`)."""
    if config.lora_init_used != "pissa":
        return config
    factor = 2**0.5 if config.use_rslora else 2.0
    return dataclasses.replace(
        config, lora_rank=2 * config.lora_rank, lora_alpha=config.lora_alpha * factor, lora_init="normal"
    )
