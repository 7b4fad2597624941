"""Plots for reports, drawn with matplotlib's non-interactive backend and returned as PNG bytes."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter, NullLocator  # noqa: E402


def _png(fig, tight: bool = True) -> bytes:
    buffer = io.BytesIO()
    if tight:
        fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def method_colours(summary: list[dict]) -> dict[str, tuple]:
    """One colour per method, the same in every plot of a report."""
    palette = plt.get_cmap("tab10")
    methods = list(dict.fromkeys(r["method"] for r in summary))
    return {m: palette(i % 10) for i, m in enumerate(methods)}


def accuracy_scatter(summary: list[dict], x_key: str, x_label: str, log_x: bool) -> bytes:
    """Test accuracy of each method against ``x_key`` (trainable parameters or train seconds)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = method_colours(summary)
    for row in summary:
        x = row.get(x_key)
        if x is None or (log_x and x <= 0):
            continue
        ax.errorbar(
            x,
            row["test_accuracy"],
            yerr=row.get("test_accuracy_std") or None,
            fmt="o",
            capsize=3,
            label=row["method"],
            color=colours[row["method"]],
        )
        ax.annotate(
            row["method"], (x, row["test_accuracy"]), textcoords="offset points", xytext=(5, 5), fontsize=8
        )
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("test accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def training_curves(histories: dict[str, list[dict]]) -> bytes:
    """Training and validation loss, and validation accuracy, per epoch; one colour per run."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    palette = plt.get_cmap("tab10")
    for i, (name, rows) in enumerate(histories.items()):
        colour = palette(i % 10)
        epochs = [int(r["epoch"]) for r in rows]
        loss_ax.plot(epochs, [float(r["train_loss"]) for r in rows], marker="o", color=colour, label=name)
        if rows and rows[0].get("val_loss") not in (None, ""):
            val_loss = [float(r["val_loss"]) for r in rows]
            loss_ax.plot(epochs, val_loss, marker="s", linestyle="--", color=colour, label=f"{name} (val)")
        if rows and rows[0].get("val_accuracy") not in (None, ""):
            acc_ax.plot(
                epochs, [float(r["val_accuracy"]) for r in rows], marker="o", color=colour, label=name
            )
    loss_ax.set_ylabel("loss (cross-entropy)")
    acc_ax.set_ylabel("validation accuracy")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        # Epochs are whole numbers; matplotlib would otherwise tick 1.0, 1.2, … on short runs.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    # One legend under both panels: inside, a dozen runs would hide the curves.
    handles, labels = loss_ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))), fontsize=8)
    rows_of_legend = math.ceil(len(labels) / 4)
    fig.set_size_inches(10, 3.8 + 0.22 * rows_of_legend)
    fig.tight_layout(rect=(0, 0.05 * rows_of_legend + 0.02, 1, 1))
    return _png(fig, tight=False)


def reliability_diagram(reliability, title: str) -> bytes:
    """Accuracy against confidence per bin, the diagonal of perfect calibration, and counts."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    edges = reliability.edges
    width = edges[1] - edges[0]
    filled = reliability.counts > 0
    centres = edges[:-1] + width / 2
    ax.bar(
        centres[filled],
        reliability.accuracy[filled],
        width=width * 0.9,
        color="tab:blue",
        alpha=0.8,
        label="accuracy in bin",
    )
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    for x, y, n in zip(
        centres[filled], reliability.accuracy[filled], reliability.counts[filled], strict=True
    ):
        ax.text(x, min(y + 0.02, 0.97), str(int(n)), ha="center", fontsize=7)
    # Confidence of the top class is at least 1 / classes; start the axis where the data are.
    low = max(0.0, float(edges[:-1][filled].min())) if filled.any() else 0.0
    ax.set_xlim(low, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE {reliability.ece:.3f} (numbers: texts per bin)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def confusion(matrix: list[list[int]], labels: list[str], title: str) -> bytes:
    size = max(3.2, 0.8 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(
                j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black"
            )
    fig.colorbar(image, ax=ax, fraction=0.046, label="texts")
    return _png(fig)


def curve_positions(summary: list[dict], all_per_class: float | None) -> dict[str, float]:
    """Where each training size sits on the x axis: its texts per class; "all" at the real
    size when known (else at twice the largest subset, only to keep it right of them)."""
    sizes = sorted({str(r["train_size"]) for r in summary if r["train_size"] != "all"}, key=int)
    largest = max([int(s) for s in sizes], default=1)
    return {s: float(s) for s in sizes} | {"all": float(all_per_class or largest * 2)}


def learning_curves(summary: list[dict], all_per_class: float | None = None) -> bytes:
    """Test accuracy against training texts per class, one line per method, ± std as a band.

    The "all" point is drawn at its real size, ``all_per_class`` (training texts / classes)."""
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    position = curve_positions(summary, all_per_class)
    sizes = [s for s in position if s != "all"]
    full = position["all"]
    for method in dict.fromkeys(r["method"] for r in summary):
        rows = sorted(
            (r for r in summary if r["method"] == method), key=lambda r: position[str(r["train_size"])]
        )
        xs = [position[str(r["train_size"])] for r in rows]
        ys = [r["test_accuracy"] for r in rows]
        spread = [r.get("test_accuracy_std") or 0.0 for r in rows]
        ax.plot(xs, ys, marker="o", label=method)
        ax.fill_between(
            xs,
            [y - s for y, s in zip(ys, spread, strict=True)],
            [y + s for y, s in zip(ys, spread, strict=True)],
            alpha=0.2,
        )
    ax.set_xscale("log")
    ticks = {position[s]: str(s) for s in sizes}
    if any(r["train_size"] == "all" for r in summary):
        ticks[float(full)] = f"all\n({full:,.0f})"
    # Log axes add labelled minor ticks (2×10¹, …) that collide with ours: show only ours.
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    kept = _spaced(sorted(ticks), keep=float(full) if "all" in {r["train_size"] for r in summary} else None)
    ax.set_xticks(kept, [ticks[t] for t in kept])
    ax.set_xlabel("training texts per class (log scale)")
    ax.set_ylabel("test accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _spaced(positions: list[float], keep: float | None, decades: float = 0.15) -> list[float]:
    """Drop tick positions closer than ``decades`` (log10) to a kept neighbour, so their labels
    cannot overlap; ``keep`` is never dropped (the neighbour goes instead)."""
    kept: list[float] = []
    for x in positions:
        if kept and math.log10(x) - math.log10(kept[-1]) < decades:
            if x == keep:
                kept[-1] = x
            continue
        kept.append(x)
    return kept


def lowrank_curve(study: dict) -> bytes:
    """Accuracy of the two low-rank versions against rank, with the fine-tuned reference."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for version, label in ((1, "version 1: rank-r W"), (2, "version 2: W0 + rank-r ΔW")):
        rows = sorted((r for r in study["rows"] if r["version"] == version), key=lambda r: r["rank"])
        ax.plot([r["rank"] for r in rows], [r["accuracy"] for r in rows], marker="o", label=label)
    this = "fully fine-tuned" if study.get("method", "full") == "full" else f"{study['method']} run"
    ax.axhline(study["fine_tuned_accuracy"], color="grey", linestyle="--", label=this)
    if study.get("against"):
        other = study["against"]
        name = "fully fine-tuned" if other["method"] == "full" else f"{other['method']} run"
        ax.axhline(other["accuracy"], color="tab:red", linestyle="-.", label=name)
    if study.get("head_accuracy") is not None:
        ax.axhline(study["head_accuracy"], color="black", linestyle=":", label="head-tuned")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("rank r of the approximation (log scale)")
    ax.set_ylabel("accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def delta_spectra(study: dict) -> dict[str, bytes]:
    """One figure per layer type: the singular values of each layer's ΔW (relative to the
    largest, log scale) and the share of ‖ΔW‖² in the top r directions, coloured by depth."""
    figures = {}
    rows = study["diagnostics"]
    for kind in dict.fromkeys(r["type"] for r in rows):
        group = [r for r in rows if r["type"] == kind]
        colours = plt.get_cmap("viridis")
        fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.8))
        for i, row in enumerate(group):
            values = row["singular_values"]
            colour = colours(i / max(1, len(group) - 1))
            if values and values[0] > 0:
                left.plot(range(1, len(values) + 1), [v / values[0] for v in values], color=colour, lw=1)
            ranks = sorted(int(k) for k in row["energy"])
            right.plot(ranks, [row["energy"][str(k)] for k in ranks], color=colour, marker="o", ms=3, lw=1)
        left.set_yscale("log")
        left.set_xlabel("singular value index")
        left.set_ylabel("σᵢ / σ₁")
        left.set_title(f"{kind}: spectrum of ΔW (dark = lower layers)", fontsize=9)
        right.set_xscale("log", base=2)
        right.set_ylim(0, 1.02)
        right.set_xlabel("rank r (log scale)")
        right.set_ylabel("share of ‖ΔW‖² in top r")
        if study.get("lora_rank"):
            right.axvline(study["lora_rank"], color="grey", linestyle="--", lw=1)
        for ax in (left, right):
            ax.grid(True, alpha=0.3)
        figures[kind] = _png(fig)
    return figures


def sweep_heatmap(summary: dict, x: str, y: str) -> bytes:
    """Validation accuracy over two grid axes (best over any other axes), annotated."""
    grid = summary["spec"]["grid"]
    xs, ys = grid[x], grid[y]
    values = [[float("nan")] * len(xs) for _ in ys]
    for row in summary["rows"]:
        if row.get("status") != "completed":
            continue
        i, j = ys.index(row[y]), xs.index(row[x])
        current = values[i][j]
        if current != current or row["validation_accuracy"] > current:
            values[i][j] = row["validation_accuracy"]
    fig, ax = plt.subplots(figsize=(1.2 * len(xs) + 2.4, 0.8 * len(ys) + 1.8))
    image = ax.imshow(values, cmap="viridis", origin="lower", aspect="auto")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    finite = [v for line in values for v in line if v == v]
    middle = (min(finite) + max(finite)) / 2 if finite else 0
    for i, line in enumerate(values):
        for j, value in enumerate(line):
            text = "–" if value != value else f"{value:.3f}"
            ax.text(j, i, text, ha="center", va="center", color="white" if value < middle else "black")
    others = [a for a in grid if a not in (x, y)]
    ax.set_title("validation accuracy" + (f" (best over {', '.join(others)})" if others else ""), fontsize=9)
    fig.colorbar(image, ax=ax)
    return _png(fig)
