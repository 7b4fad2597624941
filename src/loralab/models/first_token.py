"""Compute only the first token in the encoder's last layer, when that is all the head reads.

Sequence classification heads of BERT-like encoders (BERT's pooler, RoBERTa's and ELECTRA's
classifier) read the last layer's output at the first token alone. The last layer still
needs keys and values of every token, but its query, attention output, feed-forward block
and their backward passes are only needed for that one token: on a 6-layer model this skips
about 14 % of the linear-layer work in training and in prediction, with the same result.

transformers has no switch for this, so the last layer's ``forward`` is replaced on the
instance (parameters, names and saved files are untouched), and a check on a padded probe
batch confirms the model's logits are unchanged; any other architecture is left as it is.
"""

from __future__ import annotations

import sys
import types

import torch
from torch import nn

TOLERANCE = 1e-4
PATCHED = "loralab_first_token_only"


def _encoder_layers(model: nn.Module) -> nn.ModuleList | None:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    encoder = getattr(base, getattr(base, "base_model_prefix", ""), None)
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    return layers if isinstance(layers, nn.ModuleList) and len(layers) else None


def _first_token_forward(layer: nn.Module, hidden_states: torch.Tensor, attention_mask=None, *args, **kwargs):
    """The layer's own submodules, with queries and everything after attention on token 0."""
    attention = layer.attention
    self_attention = attention.self
    first = hidden_states[:, :1]  # (B, 1, H)
    batch, length, _ = hidden_states.shape
    size = self_attention.attention_head_size
    query = self_attention.query(first).view(batch, 1, -1, size).transpose(1, 2)  # (B, heads, 1, d)
    key = self_attention.key(hidden_states).view(batch, length, -1, size).transpose(1, 2)
    value = self_attention.value(hidden_states).view(batch, length, -1, size).transpose(1, 2)
    if attention_mask is not None and attention_mask.dim() == 4 and attention_mask.shape[-2] > 1:
        attention_mask = attention_mask[:, :, :1]  # the first query's row
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
    return layer.feed_forward_chunk(attention_output)  # (B, 1, H)


def _probe(model: nn.Module) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    input_ids = torch.randint(5, min(vocab, 1000), (3, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    attention_mask[2, 3:] = 0
    device = next(model.parameters()).device
    return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}


def first_token_only(model: nn.Module) -> bool:
    """Make the last encoder layer compute the first token only, if the logits stay the same.

    Returns whether the model now takes the shortcut."""
    layers = _encoder_layers(model)
    if layers is None:
        return False
    last = layers[-1]
    if getattr(last, PATCHED, False):
        return True
    needed = ("attention", "feed_forward_chunk")
    if not all(hasattr(last, n) for n in needed) or not hasattr(last.attention, "self"):
        return False
    if not all(hasattr(last.attention.self, n) for n in ("query", "key", "value", "attention_head_size")):
        return False
    probe = _probe(model)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            reference = model(**probe).logits
            last.forward = types.MethodType(_first_token_forward, last)
            shortcut = model(**probe).logits
        same = reference.shape == shortcut.shape and torch.allclose(reference, shortcut, atol=TOLERANCE)
    except Exception:  # an architecture this does not fit: keep the model's own forward
        same = False
    finally:
        model.train(was_training)
    if not same:
        last.__dict__.pop("forward", None)
        return False
    setattr(last, PATCHED, True)
    return True


def full_forward(model: nn.Module) -> None:
    """Undo :func:`first_token_only` (every token of the last layer is computed again)."""
    layers = _encoder_layers(model)
    if layers is not None and getattr(layers[-1], PATCHED, False):
        layers[-1].__dict__.pop("forward", None)
        layers[-1].__dict__.pop(PATCHED, None)
