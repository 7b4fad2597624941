"""``loralab export``: a run as a folder that loads without loralab."""

from __future__ import annotations

from pathlib import Path

import typer

from loralab.cli.common import console, handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def export(
        run: Path = typer.Argument(..., help="A completed run folder."),
        out: Path = typer.Argument(..., help="Folder to write."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty OUT."),
        onnx: bool = typer.Option(
            False, "--onnx", help="Also write model.onnx for ONNX Runtime (predict --backend onnx)."
        ),
        int8: bool = typer.Option(
            False, "--int8", help="With --onnx: also write model.int8.onnx (dynamic int8 weights)."
        ),
    ) -> None:
        """Write a merged, plain transformers model (or a scikit-learn pipeline for TF-IDF runs)."""
        # deferred: loralab.runs.export imports torch, transformers and the training loop (~3.5 s)
        from loralab.runs.export import export_run

        result = export_run(run, out, overwrite=overwrite, onnx=onnx, int8=int8)
        console.print(
            f"Exported {run} as a {result['kind']} model to {out} "
            f"(checked on {result['checked_texts']} texts, max probability difference "
            f"{result['max_difference']:.1e})."
        )
        if result["int8_label_agreement"] is not None:
            console.print(
                f"int8 ONNX model: same label as the run on {result['int8_label_agreement']:.1%} of the "
                "check texts; measure its accuracy with loralab evaluate before relying on it."
            )
