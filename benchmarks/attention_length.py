"""What long inputs cost: eager against fused (SDPA) attention, and the quadratic share.

    python benchmarks/attention_length.py [--lengths 128,256,512] [--batch 4] [--repeats 5]

Loads the embedded MiniLM for sequence classification with ``attn_implementation`` ``eager``
(explicit softmax of QKᵀ) and ``sdpa`` (``torch.nn.functional.scaled_dot_product_attention``,
what transformers picks by default), plus sdpa with loralab's first-token-only last layer, and
times a forward pass (``torch.inference_mode``, fp32, the fastest of ``--repeats``) on batches
of random token ids at each length, half of the rows padded to 3/4 of it so the attention mask
is used. Prints milliseconds per batch, microseconds per token, the speed-up of sdpa, the
largest logit difference from sdpa, and the share of attention's matrix products in the FLOPs
(``4 · T · hidden`` per token and layer, against 2 per encoder parameter).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def load(implementation: str):
    from transformers import AutoModelForSequenceClassification

    from loralab.models.loading import quiet_transformers, resolve_model

    quiet_transformers()
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_model("minilm"), num_labels=2, attn_implementation=implementation
    )
    return model.eval()


def batch(length: int, size: int, vocab: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(length)
    input_ids = torch.randint(1000, vocab, (size, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[size // 2 :, (3 * length) // 4 :] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def seconds(model, inputs, repeats: int) -> tuple[float, torch.Tensor]:
    with torch.inference_mode():
        logits = model(**inputs).logits  # warm-up
        times = []
        for _ in range(repeats):
            begin = time.perf_counter()
            model(**inputs)
            times.append(time.perf_counter() - begin)
    return min(times), logits  # the least disturbed run: other processes only add time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="128,256,512")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="one thread: steadier on a shared machine")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from loralab.models.first_token import first_token_only

    models = {name: load(name.split("+")[0]) for name in ("eager", "sdpa", "sdpa+first")}
    for name in ("eager", "sdpa+first"):
        models[name].load_state_dict(models["sdpa"].state_dict())  # the same random head
    assert first_token_only(models["sdpa+first"])  # loralab's last layer on the first token only
    config = models["sdpa"].config
    layers, hidden = config.num_hidden_layers, config.hidden_size
    encoder_params = sum(p.numel() for p in models["sdpa"].bert.encoder.parameters())
    rows = []
    for length in (int(x) for x in args.lengths.split(",")):
        inputs = batch(length, args.batch, config.vocab_size)
        tokens = int(inputs["attention_mask"].numel())
        timed = {name: seconds(model, inputs, args.repeats) for name, model in models.items()}
        attention_flops = 4 * length * hidden * layers  # QKᵀ and AV, per token
        rows.append(
            {
                "length": length,
                "eager_ms": 1000 * timed["eager"][0],
                "sdpa_ms": 1000 * timed["sdpa"][0],
                "sdpa_first_token_ms": 1000 * timed["sdpa+first"][0],
                "eager_us_per_token": 1e6 * timed["eager"][0] / tokens,
                "sdpa_us_per_token": 1e6 * timed["sdpa"][0] / tokens,
                "speedup": timed["eager"][0] / timed["sdpa"][0],
                "max_logit_difference": max(
                    float((timed[name][1] - timed["sdpa"][1]).abs().max()) for name in ("eager", "sdpa+first")
                ),
                "attention_flop_share": attention_flops / (attention_flops + 2 * encoder_params),
            }
        )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    widths = {
        "T": 5,
        "eager ms": 9,
        "sdpa ms": 9,
        "+first ms": 9,
        "eager µs/tok": 12,
        "sdpa µs/tok": 12,
        "×": 5,
        "attn FLOP": 9,
    }
    print(" ".join(f"{name:>{width}}" for name, width in widths.items()))
    for r in rows:
        print(
            f"{r['length']:>5} {r['eager_ms']:>9.1f} {r['sdpa_ms']:>9.1f} {r['sdpa_first_token_ms']:>9.1f} "
            f"{r['eager_us_per_token']:>12.1f} "
            f"{r['sdpa_us_per_token']:>12.1f} {r['speedup']:>5.2f} {r['attention_flop_share']:>9.1%}"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
