"""``loralab model inspect``."""

from __future__ import annotations

from typing import Any, cast

import typer

from loralab.cli.common import console, handle_errors, table
from loralab.cli.options import setting_option
from loralab.config import TrainConfig

app = typer.Typer(help="Look at a model and its tokenizer.", no_args_is_help=True)


@app.command("inspect")
@handle_errors
def inspect(
    model: str = setting_option("model"),
    text: str = typer.Option(
        "a charming and often affecting journey.", "--text", help="Text to tokenise and encode."
    ),
    num_labels: int = typer.Option(
        2, "--num-labels", help="Classes of the head used for the parameter counts."
    ),
    lora_rank: int = setting_option("lora_rank"),
    target_modules: str | None = setting_option("target_modules"),
    max_length: int = setting_option("max_length"),
) -> None:
    """Architecture, parameters per method, tokenisation, hidden-state shapes, LoRA targets."""
    # deferred: loralab.methods imports torch and transformers (~2.5 s)
    from loralab.methods.inspect import parameter_table
    from loralab.models.inspect import inspect_model

    config = TrainConfig(
        model=model,
        lora_rank=lora_rank,
        target_modules=cast(Any, target_modules),  # a comma-separated string: TrainConfig splits it
        max_length=max_length,
    )
    labels = [str(i) for i in range(num_labels)]
    info = inspect_model(config, text, labels)
    console.print(f"[bold]{model}[/]  ({info['class']})")
    console.print(
        table("Architecture", ["setting", "value"], [[k, v] for k, v in info["architecture"].items()])
    )
    console.print(f"Head modules (trained by every method): {', '.join(info['head_modules'])}")
    if info["newly_initialised"]:
        console.print(f"Newly initialised at load: {', '.join(info['newly_initialised'])}")
    rows = [
        [r["method"], r["trainable"], r["total"], f"{r['share']:.2%}"]
        for r in parameter_table(config, labels)
    ]
    console.print(
        table(
            f"Parameters ({num_labels} classes, LoRA rank {lora_rank})",
            ["method", "trainable", "total", "share"],
            rows,
        )
    )
    console.print(
        table(
            f"Tokenisation of {text!r}",
            ["token", "input_id", "attention_mask"],
            [
                [t, i, m]
                for t, i, m in zip(info["tokens"], info["input_ids"], info["attention_mask"], strict=True)
            ],
        )
    )
    console.print(
        f"Hidden states (batch, tokens, hidden): {tuple(info['hidden_state_shape'])}; "
        f"[CLS] vector: {tuple(info['cls_shape'])}"
    )
    console.print(
        table(
            "Linear layers LoRA can target",
            ["name", "count"],
            [[k, v] for k, v in info["linear_modules"].items()],
        )
    )
    preset = info["preset_targets"]
    shown = ", ".join(preset) if preset else "none (pass --target-modules)"
    console.print(f"Preset for this family: {shown}; also: all-linear")
