"""Which linear layers LoRA adapts: ``all-linear`` (LoRA's default), presets per model family,
explicit names.

Names match by dot-bounded suffix of the qualified module name (``value`` matches
``encoder.layer.0.attention.self.value`` but not ``key_value``) and only ``nn.Linear`` modules
inside the encoder count; the head is trained whole, never adapted.
"""

from __future__ import annotations

from torch import nn

from loralab.config import TrainConfig
from loralab.errors import ModelError
from loralab.models.first_token import FirstTokenLayer

FAMILY_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "camembert": ["query", "value"],
    "electra": ["query", "value"],
    "albert": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "deberta-v2": ["query_proj", "value_proj"],
    "deberta": ["in_proj"],
    "modernbert": ["Wqkv"],
    "mpnet": ["q", "v"],
}
ALL_LINEAR = "all-linear"
PRESET = "preset"  # the family's attention preset above, by name
# What LoRA adapts when --target-modules is not given. Adapting every linear layer of the
# encoder (attention and feed-forward) is what closes the gap to full fine-tuning (Dettmers et
# al. 2023, QLoRA, §4; measured here in docs/results.md: SST-2 and rotten_tomatoes); the
# query/value preset of Hu et al. (2021) trails it by 1–2 points for a small extra cost.
LORA_DEFAULT_TARGETS = [ALL_LINEAR]


def linear_modules(model: nn.Module, head_modules: list[str]) -> dict[str, nn.Linear]:
    """Qualified name → ``nn.Linear`` for every linear layer outside the head."""
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and not any(
            name == h or name.startswith(h + ".") for h in head_modules
        ):
            found[name] = module
    return found


def short_names(names) -> list[str]:
    return sorted({n.rsplit(".", 1)[-1] for n in names})


def matches(qualified: str, target: str) -> bool:
    return qualified == target or qualified.endswith("." + target)


def family_targets(model: nn.Module) -> list[str]:
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    if model_type not in FAMILY_TARGETS:
        raise ModelError(
            f"No target-module preset for model type '{model_type}'; pass --target-modules "
            f"(names or {ALL_LINEAR}). Presets exist for {', '.join(sorted(FAMILY_TARGETS))}."
        )
    return FAMILY_TARGETS[model_type]


def encoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The qualified name and modules of the encoder's stack: one module per hidden layer."""
    config = getattr(model, "config", None)
    depth = getattr(config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) != depth:
            continue
        # A last layer computing the first token only stands in for a layer of the same kind.
        kinds = {type(m.plain_layer) if isinstance(m, FirstTokenLayer) else type(m) for m in module}
        if len(kinds) == 1:
            return name, module
    raise ModelError(f"Cannot find the {depth} encoder layers of {type(model).__name__} for --lora-layers.")


def in_top_layers(model: nn.Module, names: list[str], count: int) -> list[str]:
    """The names among ``names`` that lie in the top ``count`` encoder layers."""
    stack, layers = encoder_layers(model)
    depth = len(layers)
    if count > depth:
        raise ModelError(
            f"--lora-layers {count} is more than this model's depth: it has {depth} encoder layers, "
            f"so use 1 to {depth}."
        )
    first = depth - count
    kept = [n for n in names if n.startswith(stack + ".") and int(n[len(stack) + 1 :].split(".")[0]) >= first]
    if not kept:
        raise ModelError(f"None of the target modules lies in the top {count} of the {depth} encoder layers.")
    return kept


def lora_targets(model: nn.Module, head_modules: list[str], config: TrainConfig) -> list[str]:
    """The qualified names of the layers a LoRA backend adapts for ``config``: its
    ``--target-modules``, else :data:`LORA_DEFAULT_TARGETS`, within ``--lora-layers``."""
    return resolve_targets(
        model,
        head_modules,
        config.target_modules or LORA_DEFAULT_TARGETS,
        config.lora_rank,
        config.lora_layers,
    )


def resolve_targets(
    model: nn.Module,
    head_modules: list[str],
    targets: list[str] | None,
    rank: int | None = None,
    top_layers: int | None = None,
) -> list[str]:
    """Return the qualified names of the linear layers to adapt, or fail with what exists.

    With ``top_layers``, only the targets in the top that many encoder layers are kept."""
    linear = linear_modules(model, head_modules)
    if targets is None or targets == [PRESET]:
        targets = family_targets(model)
    if targets == [ALL_LINEAR]:
        chosen = sorted(linear)
    else:
        chosen = []
        for target in targets:
            hit = [name for name in linear if matches(name, target)]
            if not hit:
                raise ModelError(
                    f"Target module '{target}' matches no linear layer of this model; the linear "
                    f"layers are named {', '.join(short_names(linear))} (or use {ALL_LINEAR})."
                )
            chosen.extend(hit)
        chosen = sorted(set(chosen), key=list(linear).index)
    if top_layers is not None:
        chosen = in_top_layers(model, chosen, top_layers)
    if rank is not None:
        for name in chosen:
            layer = linear[name]
            limit = min(layer.in_features, layer.out_features)
            if rank > limit:
                raise ModelError(
                    f"--lora-rank {rank} is larger than layer {name} allows "
                    f"({layer.in_features}→{layer.out_features}, at most {limit})."
                )
    return chosen
