"""Accuracy and cost of each way of reading long texts, on the same splits.

    python benchmarks/long_text.py ../shared/data/imdb --max-length 256 --subset 2000 \
        [--method lora] [--epochs 3] [--strategies head,tail,head+tail,chunks,chunks-max,chunks-train]

Trains one run per strategy (the same method, seed and splits) and records test accuracy and
macro F1, training seconds, test inference texts/s and how many windows a test text becomes.
Strategies: ``head``, ``tail``, ``head+tail`` (a quarter head, after Sun et al. 2019), ``chunks``
(mean of window logits), ``chunks-max`` and ``chunks-train`` (also trained on every window).
Results go to ``benchmarks/results/long_text-<data>.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

STRATEGIES = {
    "head": {},
    "tail": {"truncation": "tail"},
    "head+tail": {"truncation": "head+tail"},
    "chunks": {"long_text": "chunks"},
    "chunks-max": {"long_text": "chunks", "chunk_aggregation": "max"},
    "chunks-train": {"long_text": "chunks", "train_on_chunks": True},
}


def main() -> None:
    from loralab.config import TrainConfig
    from loralab.data import load_data
    from loralab.data.long_text import TextInput
    from loralab.runs.train import train_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--method", default="lora")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    args = parser.parse_args()
    splits = load_data(args.data, subset=args.subset)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.strategies.split(","):
            config = TrainConfig(
                method=args.method, max_length=args.max_length, epochs=args.epochs, **STRATEGIES[name]
            )
            result = train_run(splits, config, Path(scratch) / name, progress=False)
            text_input = TextInput.of(config)
            tokenizer = result.classifier.tokenizer
            windows = len(text_input.encode_documents(tokenizer, splits.test.texts)[0])
            test = result.metrics["test"]
            rows.append(
                {
                    "strategy": name,
                    "reads": text_input.describe(),
                    "test_accuracy": test["accuracy"],
                    "test_macro_f1": test["macro_f1"],
                    "train_seconds": result.manifest["train_seconds"],
                    "test_texts_per_second": test["inference_texts_per_second"],
                    "test_sequences_per_text": windows / len(splits.test),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    out = Path(__file__).parent / "results" / f"long_text-{Path(args.data).name}.json"
    setup = {
        "method": args.method,
        "max_length": args.max_length,
        "subset": args.subset,
        "epochs": args.epochs,
    }
    out.write_text(json.dumps({"setup": setup, "rows": rows}, indent=2))
    print(f"{'strategy':<13} {'accuracy':>8} {'macro F1':>8} {'train s':>8} {'texts/s':>8} {'seq/text':>8}")
    for r in rows:
        print(
            f"{r['strategy']:<13} {r['test_accuracy']:>8.4f} {r['test_macro_f1']:>8.4f} "
            f"{r['train_seconds']:>8.0f} {r['test_texts_per_second']:>8.1f} "
            f"{r['test_sequences_per_text']:>8.2f}"
        )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
