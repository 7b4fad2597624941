"""Whether a run can be exported as one folder that loads without loralab, read from its
manifest alone: ``loralab export`` refuses with this sentence before loading the run, and the
page's Ship section marks such runs without loading them.

A method says it can with ``Method.single_file_export`` (loralab's neural methods and TF-IDF
baselines do; a method registered elsewhere that returns one of their classifiers sets it too)."""

from __future__ import annotations

from pathlib import Path

from loralab.errors import LoralabError
from loralab.methods import get_method


def export_refusal(run_dir: Path, manifest: dict) -> str | None:
    """Why the run in ``run_dir`` has no single-file export, or ``None`` when it has one."""
    name = str(manifest.get("method", ""))
    try:
        method = get_method(name)
    except LoralabError:
        return None  # loading the run names what is wrong with it
    serve_it = "serve it with loralab serve or score files with loralab predict."
    if not method.single_file_export:
        paired = " (they pair the encoder with a scikit-learn model)" if method.uses_encoder else ""
        return f"{run_dir}: '{name}' runs have no single-file export{paired}; {serve_it}"
    return pooled_refusal(run_dir, (manifest.get("pooling") or {}).get("pooling"))


def pooled_refusal(run_dir: Path, pooling: str | None) -> str | None:
    """The refusal for a head that reads ``pooling``-pooled sentence vectors (``None``: it reads
    the model's own input, which an export computes)."""
    if not pooling:
        return None
    return (
        f"{run_dir}: its head reads {pooling}-pooled sentence vectors, which a transformers or ONNX "
        "export of the model would not compute; serve it with loralab serve or score files with "
        "loralab predict."
    )
