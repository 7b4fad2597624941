"""Compute only the first token in the encoder's last layer, when that is all the head reads.

Sequence classification heads of BERT-like encoders (BERT's pooler, RoBERTa's and ELECTRA's
classifier) read the last layer's output at the first token alone. The last layer still
needs keys and values of every token, but its query, attention output, feed-forward block
and their backward passes are only needed for that one token: on a 6-layer model this skips
about 14 % of the linear-layer work in training and in prediction, with the same result.

transformers has no switch for this, so the last layer is replaced in its ``ModuleList`` by
:class:`FirstTokenLayer`, which holds the layer's own submodules under their own names
(parameter names, state dicts and saved files are unchanged) and computes one query; taking
the layer out again puts the very same layer object back. Whether a model's logits stay the
same is checked by :mod:`loralab.models.speedups`, which uses this as a plugin.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

# The submodules of a BERT-like layer that the first-token forward uses.
_SELF_ATTENTION_PARTS = ("query", "key", "value", "attention_head_size", "scaling", "config")


def encoder_layer_list(model: nn.Module) -> nn.ModuleList | None:
    """The encoder's ``ModuleList`` of layers (BERT-like models), or ``None``."""
    unwrap = getattr(model, "get_base_model", None)  # PEFT's wrapper
    base: Any = unwrap() if callable(unwrap) else model
    encoder = getattr(base, str(getattr(base, "base_model_prefix", "")), None)
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    return layers if isinstance(layers, nn.ModuleList) and len(layers) else None


def fits(layer: nn.Module) -> bool:
    """Whether ``layer`` is a BERT-like encoder layer this shortcut knows how to compute."""
    attention = getattr(layer, "attention", None)
    self_attention = getattr(attention, "self", None)
    return (
        not isinstance(layer, FirstTokenLayer)
        and callable(getattr(layer, "feed_forward_chunk", None))
        and hasattr(attention, "output")
        and self_attention is not None
        and all(hasattr(self_attention, n) for n in _SELF_ATTENTION_PARTS)
        and not getattr(layer, "is_decoder", False)
        and not hasattr(layer, "crossattention")
    )


class FirstTokenLayer(nn.Module):
    """Stands in for a BERT-like encoder layer and returns its output at the first token only.

    Its children are the layer's own children under the same names, so parameters are
    shared, not copied. The layer itself is kept outside the module tree (in ``__dict__``)
    so that its parameters are not listed twice."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        for name, child in layer.named_children():
            self.add_module(name, child)
        self.__dict__["plain_layer"] = layer
        self.train(layer.training)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        layer = self.__dict__["plain_layer"]
        attention: Any = self.attention  # transformers' attention block: typed as a plain Module
        self_attention = attention.self
        first = hidden_states[:, :1]  # (B, 1, H)
        batch, length, _ = hidden_states.shape
        size = self_attention.attention_head_size
        query = self_attention.query(first).view(batch, 1, -1, size).transpose(1, 2)  # (B, heads, 1, d)
        key = self_attention.key(hidden_states).view(batch, length, -1, size).transpose(1, 2)
        value = self_attention.value(hidden_states).view(batch, length, -1, size).transpose(1, 2)
        if attention_mask is not None and attention_mask.dim() == 4 and attention_mask.shape[-2] > 1:
            attention_mask = attention_mask[:, :, :1]  # the first query's row
        # deferred: transformers' model code takes ~2–3 s to import; a loaded model has done it
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        eager = sys.modules[type(self_attention).__module__].eager_attention_forward
        interface = ALL_ATTENTION_FUNCTIONS.get_interface(self_attention.config._attn_implementation, eager)
        context, _ = interface(
            self_attention,
            query,
            key,
            value,
            attention_mask,
            dropout=self_attention.dropout.p if self_attention.training else 0.0,
            scaling=self_attention.scaling,
        )
        attention_output = attention.output(context.reshape(batch, 1, -1), first)
        result: torch.Tensor = layer.feed_forward_chunk(attention_output)  # (B, 1, H)
        return result


def first_token_only(model: nn.Module) -> bool:
    """Put a :class:`FirstTokenLayer` in place of the last encoder layer (unchecked: see
    :mod:`loralab.models.speedups` for the verified plugin). Returns whether it is there."""
    layers = encoder_layer_list(model)
    if layers is None:
        return False
    if isinstance(layers[-1], FirstTokenLayer):
        return True
    if not fits(layers[-1]):
        return False
    layers[-1] = FirstTokenLayer(layers[-1])
    return True


def full_forward(model: nn.Module) -> None:
    """Undo :func:`first_token_only`: the original last layer object is put back."""
    layers = encoder_layer_list(model)
    if layers is not None and isinstance(layers[-1], FirstTokenLayer):
        shortcut = layers[-1]
        plain = shortcut.__dict__["plain_layer"]
        plain.training = shortcut.training  # its children are shared and already in that mode
        layers[-1] = plain
