"""Model cards: a ``README.md`` in the 🤗 model-card format for every run and export.

The card is written from the run folder alone (``config.json``, ``manifest.json``,
``metrics.json``), so it can be regenerated at any time (``loralab card RUN``). Its YAML
metadata names the base model by its hub name, never by the local folder it was read from
(PEFT's own template records the path of the embedded model inside a virtualenv), and its
``model-index`` holds the run's measured metrics, so the hub renders them as a results table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from loralab.config import DEFAULT_MODEL, TrainConfig
from loralab.data.long_text import TextInput
from loralab.errors import RunError
from loralab.models.loading import EMBEDDED_ALIASES
from loralab.runs.files import atomic_write

CARD = "README.md"
_CORE_SETTINGS = ("method", "seed")
# Settings of the encoder, which a scikit-learn baseline on TF-IDF features never reads.
_ENCODER_SETTINGS = ("model", "max_length")


def hub_model_name(model: str) -> str | None:
    """The hub name of a base model, or ``None`` when it was read from a local folder."""
    if model in EMBEDDED_ALIASES:
        return DEFAULT_MODEL
    if model.startswith((".", "/", "~")) or Path(model).expanduser().exists():
        return None
    return model


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _model_kind(model_dir: Path) -> str:
    """How the saved model loads outside loralab: ``peft``, ``transformers`` or ``loralab``."""
    if (model_dir / "adapter_config.json").exists():
        return "peft"
    if (model_dir / "config.json").exists():
        return "transformers"
    return "loralab"


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def _metric_entries(metrics: dict[str, dict]) -> list[dict]:
    entries: list[dict[str, Any]] = []
    for split in ("test", "validation"):
        if split not in metrics or not metrics[split].get("n"):
            continue
        values = metrics[split]
        entries.append(
            {
                "split": split,
                "type": "accuracy",
                "name": f"{split} accuracy",
                "value": round(float(values["accuracy"]), 4),
            }
        )
        entries.append(
            {
                "split": split,
                "type": "f1",
                "name": f"{split} macro F1",
                "value": round(float(values["macro_f1"]), 4),
                "args": {"average": "macro"},
            }
        )
        if values.get("positive_label"):
            entries.append(
                {
                    "split": split,
                    "type": "f1",
                    "name": f"{split} F1 (positive class '{values['positive_label']}')",
                    "value": round(float(values["f1"]), 4),
                    "args": {"average": "binary", "pos_label": values["positive_label"]},
                }
            )
    return entries


def card_metadata(
    run_dir: Path, config: dict, manifest: dict, metrics: dict, export: str | None = None
) -> dict[str, Any]:
    """The YAML front matter: base model, library, tags and a ``model-index`` of the metrics."""
    model_dir = run_dir / "model"
    if export is not None:
        library = "sklearn" if export == "scikit-learn" else export
    elif (model_dir / "baseline.json").exists():
        library = "sklearn"
    else:
        library = {"peft": "peft", "transformers": "transformers"}.get(_model_kind(model_dir), "loralab")
    base = hub_model_name(str(config.get("model", "")))
    source = str(manifest.get("data", {}).get("source", "unknown"))
    dataset = Path(source.rstrip("/")).name or source
    meta: dict[str, Any] = {}
    if base is not None and library != "sklearn":
        meta["base_model"] = base
    meta["library_name"] = library
    meta["pipeline_tag"] = "text-classification"
    meta["tags"] = ["loralab", "text-classification", str(manifest.get("method", config.get("method")))]
    results = []
    by_split: dict[str, list[dict]] = {}
    for entry in _metric_entries(metrics):
        by_split.setdefault(entry.pop("split"), []).append(entry)
    for split, entries in by_split.items():
        results.append(
            {
                "task": {"type": "text-classification", "name": "Text Classification"},
                "dataset": {"name": dataset, "type": dataset, "split": split},
                "metrics": entries,
            }
        )
    meta["model-index"] = [{"name": run_dir.resolve().name, "results": results}]
    return meta


def _settings(config: dict, manifest: dict, uses_encoder: bool) -> list[tuple[str, Any]]:
    """The core settings and every setting that differs from the defaults."""
    defaults = TrainConfig().to_dict()
    resolved = manifest.get("resolved") or {}
    rows: list[tuple[str, Any]] = [(k, config.get(k)) for k in _CORE_SETTINGS]
    if uses_encoder:
        model = str(config.get("model"))
        rows += [
            ("model", hub_model_name(model) or Path(model).name),
            ("max_length", config.get("max_length")),
        ]
    for key in ("lr", "epochs", "batch_size", "precision"):
        value = resolved.get(key, config.get(key))
        if value is not None:
            rows.append((key, value))
    shown = {k for k, _ in rows}
    rows += [
        (k, v)
        for k, v in config.items()
        if k not in shown
        and (uses_encoder or k not in _ENCODER_SETTINGS)
        and k not in ("extra", "config_version")
        and defaults.get(k) != v
    ]
    return rows


def _plain_reading(text_input: TextInput) -> str:
    """How to give the run's model alone (without loralab) the input the run reads."""
    if not text_input.tokenizer_reproduces:
        return (
            f"The run reads {text_input.describe()}, which the model alone does not do by itself: "
            "predict with loralab to get the run's answers, or cut the token ids the same way "
            "(`loralab.data.long_text`)."
        )
    side = ' after `tokenizer.truncation_side = "left"`' if text_input.truncation == "tail" else ""
    return (
        f"The run reads {text_input.describe()}: tokenize with `truncation=True, "
        f"max_length={text_input.max_length}`{side}."
    )


def _how_to_load(
    run_name: str, kind: str, base: str | None, export: str | None, text_input: TextInput | None
) -> str:
    if export == "transformers":
        note = text_input.plain_transformers_note()["note"] if text_input is not None else ""
        return f"""```python
from transformers import pipeline

classify = pipeline("text-classification", model="{run_name}")
classify(["a gripping, beautifully acted film"])
```

{note}""".rstrip()
    if export == "scikit-learn":
        return f"""```python
import skops.io as sio

types = sio.get_untrusted_types(file="{run_name}/pipeline.skops")
print(types)  # expect only numpy, scipy and scikit-learn types
pipeline = sio.load("{run_name}/pipeline.skops", trusted=types)
pipeline.predict(["a gripping, beautifully acted film"])
```"""
    text = f"""With loralab:

```python
from loralab import TextClassifier

clf = TextClassifier.load("{run_name}")
clf.predict(["a gripping, beautifully acted film"])
```

or `loralab predict {run_name} "a gripping, beautifully acted film"`."""
    if kind == "peft":
        text += f"""

With PEFT alone (the adapter and the trained head are in `model/`):

```python
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer

base = AutoModelForSequenceClassification.from_pretrained("{base or "BASE_MODEL"}", num_labels=NUM_LABELS)
model = PeftModel.from_pretrained(base, "{run_name}/model").eval()
tokenizer = AutoTokenizer.from_pretrained("{run_name}/model")
```"""
        if text_input is not None:
            text += "\n\n" + _plain_reading(text_input)
    elif kind == "transformers":
        text += f"""

With transformers alone: `AutoModelForSequenceClassification.from_pretrained("{run_name}/model")`."""
        if text_input is not None:
            text += " " + _plain_reading(text_input)
    return text


def _long_texts(config: dict[str, Any]) -> str:
    """The card's line on what the model reads of a long text, as the run reads it."""
    text_input = TextInput.from_dict(config)
    limit = f"Texts longer than {text_input.max_length} tokens"
    if text_input.chunks:
        return f"- {limit} are read as {text_input.describe()}; no token is left out."
    return f"- {limit} are cut to {text_input.describe()}; the rest is not read."


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def model_card(
    run_dir: str | Path,
    *,
    export: str | None = None,
    export_dir: str | Path | None = None,
    manifest: dict[str, Any] | None = None,
) -> str:
    """The model card of a completed run, as Markdown with YAML front matter.

    ``export`` (``"transformers"`` or ``"scikit-learn"``) writes the loading instructions of
    the exported folder ``export_dir`` instead of the run's. ``manifest`` replaces the one on
    disk: a run writes its card from the manifest it is about to record as completed.
    """
    run_dir = Path(run_dir)
    manifest = manifest if manifest is not None else _read_json(run_dir / "manifest.json")
    if not manifest:
        raise RunError(f"{run_dir}: not a loralab run folder (no manifest.json).")
    if manifest.get("status") != "completed":
        raise RunError(
            f"{run_dir}: the run is '{manifest.get('status')}', not completed; it has no model card."
        )
    config = _read_json(run_dir / "config.json")
    metrics = _read_json(run_dir / "metrics.json")
    meta = card_metadata(run_dir, config, manifest, metrics, export)
    data = manifest.get("data", {})
    labels = list(data.get("labels") or _read_json(run_dir / "model" / "loralab.json").get("labels", []))
    method = manifest.get("method", config.get("method"))
    base = meta.get("base_model")
    uses_encoder = meta["library_name"] != "sklearn"
    model_name = base or f"a local model folder ({Path(str(config.get('model'))).name})"
    on_top = f" on top of `{model_name}`" if uses_encoder else " on TF-IDF n-gram features"
    trainable, total = manifest.get("trainable_parameters"), manifest.get("total_parameters")
    kind = _model_kind(run_dir / "model")
    name = run_dir.resolve().name

    parts = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    parts += [f"# {name}", ""]
    parts += [
        f"A text classifier trained with [loralab](https://pypi.org/project/loralab/) by the method "
        f"`{method}`{on_top}. It assigns one of {len(labels)} labels: "
        + ", ".join(f"`{label}`" for label in labels)
        + ".",
        "",
    ]
    parts += ["## Data", "", f"Source: `{Path(str(data.get('source', 'unknown'))).name}`.", ""]
    splits = data.get("splits") or {}
    if splits:
        parts += [
            _table(
                ["split", "texts", "origin", *labels],
                [
                    [
                        split,
                        info.get("size", 0),
                        info.get("origin", "file"),
                        *[info.get("label_counts", {}).get(label, 0) for label in labels],
                    ]
                    for split, info in splits.items()
                ],
            ),
            "",
        ]
    for note in data.get("notes") or []:
        parts += [f"- {note}"]
    parts += ["", "## Method and settings", ""]
    if trainable is not None and total:
        parts += [f"{trainable:,} trainable parameters of {total:,} ({trainable / total:.2%}).", ""]
    parts += [
        _table(["setting", "value"], [[k, v] for k, v in _settings(config, manifest, uses_encoder)]),
        "",
    ]
    parts += ["## Results", ""]
    evaluated = [s for s in ("validation", "test") if metrics.get(s, {}).get("n")]
    if evaluated:
        rows = [
            ["accuracy", *[metrics[s]["accuracy"] for s in evaluated]],
            ["macro F1", *[metrics[s]["macro_f1"] for s in evaluated]],
        ]
        positive = metrics[evaluated[0]].get("positive_label")
        if positive:
            rows.append([f"F1 of '{positive}'", *[metrics[s]["f1"] for s in evaluated]])
        rows.append(["texts", *[metrics[s]["n"] for s in evaluated]])
        parts += [_table(["metric", *evaluated], rows), ""]
    else:
        parts += ["The run was not evaluated on held-out data.", ""]
    parts += [
        "## Intended use",
        "",
        f"Sorting texts like those of `{Path(str(data.get('source', 'the training data'))).name}` "
        "into the labels above, for analysis at scale where a measured error rate is acceptable. "
        "Check its accuracy on a sample of your own texts before relying on it.",
        "",
    ]
    parts += ["## Limitations", ""]
    for warning in manifest.get("warnings") or []:
        parts += [f"- **Warning:** {warning}"]
    if uses_encoder:
        parts += [_long_texts(config)]
    else:
        parts += [
            "- Words never seen in training carry no weight; the model ignores word order beyond n-grams."
        ]
    parts += [
        "- The figures above hold for data like the evaluation data; texts from another domain, "
        "period or language may be classified much worse.",
        "- The model inherits the biases of its base model and of its training labels; do not use it "
        "alone for decisions about people.",
        "",
    ]
    parts += [
        "## How to load",
        "",
        _how_to_load(
            Path(export_dir).name if export_dir else name,
            kind,
            base,
            export,
            TextInput.from_dict(config) if uses_encoder else None,
        ),
        "",
    ]
    versions = manifest.get("versions") or {}
    if versions:
        parts += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items() if v) + ".", ""]
    return "\n".join(parts)


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text)


def write_model_card(run_dir: str | Path, manifest: dict[str, Any] | None = None) -> Path:
    """Write the card to ``RUN/README.md`` and ``RUN/model/README.md`` (replacing PEFT's template);
    ``manifest`` as in :func:`model_card`."""
    run_dir = Path(run_dir)
    text = model_card(run_dir, manifest=manifest)
    _write_text(run_dir / CARD, text)
    if (run_dir / "model").is_dir():
        _write_text(run_dir / "model" / CARD, text)
    return run_dir / CARD


def read_card_metadata(card: str) -> dict[str, Any]:
    """The YAML front matter of a model card."""
    if not card.startswith("---\n"):
        return {}
    return yaml.safe_load(card.split("---\n", 2)[1]) or {}
