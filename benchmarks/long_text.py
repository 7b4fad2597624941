"""Accuracy and cost of each way of reading long texts, on the same splits.

    python benchmarks/long_text.py ../shared/data/imdb                  # the IMDB table
    python benchmarks/long_text.py ../shared/data/imdb --subset 60 --epochs 1 --methods lora \
        --configs 128-head --baselines tfidf-nb --out /tmp/check.json    # a quick check

Trains one run per method × configuration × seed (the same splits for all) and the TF-IDF
baselines once per seed when they are seeded (once otherwise, as they read the whole text
whatever the configuration), then prints a markdown table of the mean (± standard deviation
over seeds) of test accuracy, macro F1, training seconds and test inference texts/s, and how
many windows a test text becomes. A configuration is ``LENGTH-head``, ``LENGTH-tail``,
``LENGTH-head+tail`` (a quarter head, after Sun et al. 2019) or ``LENGTH-chunks-strideS``
(windows of LENGTH tokens sharing S, mean of the window logits). On ``../shared/data/imdb``
the splits are its files whole: train 2,000, validation 500, test 5,000 reviews.
Results go to ``benchmarks/results/long_text-<data>[-subsetN].json`` unless ``--out``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
from pathlib import Path

DEFAULT_CONFIGS = "128-head,256-head,512-head,512-head+tail,256-chunks-stride128"
COLUMNS = {
    "test_accuracy": ("accuracy", 4),
    "test_macro_f1": ("macro F1", 4),
    "train_seconds": ("train s", 0),
    "test_texts_per_second": ("texts/s", 1),
    "test_sequences_per_text": ("seq/text", 2),
}


def config_settings(name: str) -> dict:
    """The ``TrainConfig`` settings a configuration name stands for."""
    truncated = re.fullmatch(r"(\d+)-(head|tail|head\+tail)", name)
    if truncated:
        return {"max_length": int(truncated[1]), "truncation": truncated[2]}
    chunks = re.fullmatch(r"(\d+)-chunks-stride(\d+)", name)
    if chunks:
        return {"max_length": int(chunks[1]), "long_text": "chunks", "stride": int(chunks[2])}
    raise SystemExit(
        f"--configs: '{name}' is not LENGTH-head, LENGTH-tail, LENGTH-head+tail or "
        "LENGTH-chunks-strideS (e.g. 512-head, 256-chunks-stride128)."
    )


def one_run(splits, settings: dict, folder: Path) -> dict:
    """Train one run into ``folder`` and return its row of figures."""
    from loralab.config import TrainConfig
    from loralab.data.long_text import TextInput
    from loralab.runs.train import train_run

    config = TrainConfig(**settings)
    result = train_run(splits, config, folder, progress=False)
    test = result.metrics["test"]
    row = {
        "test_accuracy": test["accuracy"],
        "test_macro_f1": test["macro_f1"],
        "train_seconds": result.manifest.get("train_seconds"),
        "test_texts_per_second": test.get("inference_texts_per_second"),
        "test_sequences_per_text": None,
    }
    tokenizer = getattr(result.classifier, "tokenizer", None)
    if tokenizer is not None:
        windows = len(TextInput.of(config).encode_documents(tokenizer, splits.test.texts)[0])
        row["test_sequences_per_text"] = windows / len(splits.test)
    return row


def summary(rows: list[dict]) -> dict:
    """Mean and standard deviation over seeds of every figure of :data:`COLUMNS`."""
    out = {}
    for key in COLUMNS:
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = statistics.fmean(values) if values else None
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
    return out


def markdown_table(groups: list[dict]) -> str:
    lines = [
        "| method | reads | seeds | " + " | ".join(label for label, _ in COLUMNS.values()) + " |",
        "| --- | --- | ---: |" + " ---: |" * len(COLUMNS),
    ]
    for group in groups:
        cells = []
        for key, (_, digits) in COLUMNS.items():
            mean, std = group[key], group[f"{key}_std"]
            cell = "–" if mean is None else f"{mean:,.{digits}f}"
            cells.append(cell + (f" ± {std:,.{digits}f}" if std is not None else ""))
        row = f"| {group['method']} | {group['reads']} | {group['seeds']} | " + " | ".join(cells) + " |"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data")
    parser.add_argument("--methods", default="lora,full", help="Transformer methods (lora,full).")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"Comma-separated ({DEFAULT_CONFIGS}).")
    parser.add_argument("--baselines", default="tfidf-logreg,tfidf-nb", help="Whole-text baselines, or none.")
    parser.add_argument("--seeds", default="42", help="Comma-separated seeds (42).")
    parser.add_argument("--subset", type=int, default=None, help="Stratified N rows per split.")
    parser.add_argument("--epochs", type=int, default=None, help="Default: each method's own.")
    parser.add_argument("--out", type=Path, default=None, help="Result file (default: in results/).")
    args = parser.parse_args()

    from loralab.config import TrainConfig
    from loralab.data import load_data
    from loralab.data.long_text import TextInput
    from loralab.methods import get_method

    configs = {name: config_settings(name) for name in args.configs.split(",")}
    seeds = [int(seed) for seed in args.seeds.split(",")]
    baselines = [] if args.baselines == "none" else args.baselines.split(",")
    # One group per table row: (method, configuration name or None for a baseline).
    plan = [(method, name) for method in args.methods.split(",") for name in configs]
    plan += [(method, None) for method in baselines]
    splits = load_data(args.data, subset=args.subset)
    print(
        f"splits: train {len(splits.train)}, validation {len(splits.validation)}, test {len(splits.test)}",
        flush=True,
    )
    groups, runs = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for method, name in plan:
            settings = {"method": method, "epochs": args.epochs, **(configs[name] if name else {})}
            reads = TextInput.of(TrainConfig(**settings)).describe() if name else "whole text (TF-IDF)"
            group_rows = []
            for seed in seeds if get_method(method).seeded else seeds[:1]:
                folder = Path(scratch) / f"{method}-{name or 'all'}-{seed}"
                row = one_run(splits, {**settings, "seed": seed}, folder)
                row.update(method=method, config=name, seed=seed)
                group_rows.append(row)
                runs.append(row)
                print(json.dumps(row), flush=True)
            groups.append(
                {"method": method, "config": name, "reads": reads, "seeds": len(group_rows)}
                | summary(group_rows)
            )
    setup = {
        "data": args.data,
        "subset": args.subset,
        "epochs": args.epochs,
        "seeds": seeds,
        "splits": {
            "train": len(splits.train),
            "validation": len(splits.validation),
            "test": len(splits.test),
        },
    }
    name = f"long_text-{Path(args.data.rstrip('/')).name}"
    out = args.out or Path(__file__).parent / "results" / (
        name + (f"-subset{args.subset}" if args.subset is not None else "") + ".json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")  # rename at the end: never half a file
    partial.write_text(json.dumps({"setup": setup, "groups": groups, "runs": runs}, indent=2))
    partial.replace(out)
    print(markdown_table(groups))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
