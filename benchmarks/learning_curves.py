"""Learning curves of the method ladder: test accuracy against training texts per class, the
method loralab recommends at each size, and whether that recommendation holds up on test.

    python benchmarks/learning_curves.py ../shared/data/rotten_tomatoes
    python benchmarks/learning_curves.py ../shared/data/sst2
    python benchmarks/learning_curves.py ../shared/data/sst2 --reuse   # only read the folders

Two ``loralab compare`` runs per data set, because compare repeats every seeded method the same
number of times at every size (it has no per-size seed count):

- ``small``: 8, 16, 32, 64 texts per class, 5 seeds, tfidf-logreg, embed-logreg, setfit,
  setfit-lora, head, lora, full;
- ``large``: 256 per class and the whole training split, 3 seeds, the same methods but the
  few-shot ones, setfit and setfit-lora (their pair budget is the same at every size).

The check that a LoRA-based recipe is at least as accurate as SetFit from 64 texts per class
on weighs the best of lora and setfit-lora (SetFit's recipe with LoRA adapters, which counts
as LoRA-based) against setfit.

Each writes its compare folder (``runs/learning-curves/DATA-small`` and ``DATA-large`` by
default). Then this script writes ``benchmarks/results/learning_curves-DATA.json``, prints a
Markdown table (mean ± std of test accuracy over seeds, the recommended method and its gap to
the best method on test) and the acceptance checks, and draws the curves with
:func:`loralab.reports.plots.learning_curves` into ``docs/learning-curves-DATA.png`` (e.g.
``docs/learning-curves-rotten-tomatoes.png``, where the other figures of docs/ live). It exits
with 1 when a check fails (everything is written first).

How long it takes, estimated from the step counts on this project's 2-core CPU: LoRA trains
about 150 texts/s (docs/performance.md), full fine-tuning 32 (docs/results.md: 789 s for 3
epochs of 8,530 texts) and SetFit about one 16-pair step a second, prediction about 300 texts/s;
each run adds about 15 s of loading, scoring the test split and the reload check. Below a few
hundred texts, neural methods train at least 100 optimizer steps (``--min-train-steps``; they
stop early after a quarter of that without a better validation accuracy, so these are upper
bounds) and evaluate validation after every epoch, so their cost is nearly flat up to 256 per
class. Per run, on rotten_tomatoes:

| per class | lora (batch 32) | full (batch 16) | setfit (16 pairs a step) | head |
| ---: | --- | --- | --- | --- |
| 8 | 100 steps, 1,600 texts: ~30 s | 100 steps, 1,600 texts: ~70 s | 40 steps: ~60 s | ~20 s |
| 16 | 100 steps, 3,200 texts: ~45 s | 100 steps, 1,600 texts: ~70 s | 80 steps: ~100 s | ~20 s |
| 32, 64 | 100 steps, 3,200 texts: ~45 s | 100–104 steps, ≤1,664 texts: ~70 s | 125 steps: ~145 s | ~20 s |
| 256 | 112 steps, 3,584 texts: ~50 s | 128 steps, 2,048 texts: ~85 s | – | ~20 s |
| all (8,530) | 801 steps, 25,590 texts: ~3.5 min | 1,602 steps, 25,590 texts: ~14 min | – | ~1 min |

tfidf-logreg takes a second or two and embed-logreg (one encoder pass, cached on disk) under a
minute. So ``small`` is about 5 × (3 + 4 + 4.7 + 4.7) min ≈ 85 min and ``large``
about 3 × 2.6 min (256) + 3 × 19 min (all) ≈ 65 min: about 2.5 hours per data set on idle
cores, up to twice that when they are shared (SetFit's own docstring measured 7.5 s a step
under heavy load). SST-2 (6,920 training texts, 1,821 test) costs about the same.

The whole-split point can come from an earlier ``loralab compare DATA --seeds 3`` with every
default (the three-seed check in docs/results.md): ``--large-sizes 256 --read-from FOLDER``
reads it from FOLDER instead of training it again; the splits' fingerprints must match. The
same option joins sizes run elsewhere (two parts of the curve on two cores, say).
The recommendation at every size is worked out again from the runs by today's rule.

Resuming: run the same command again. ``loralab compare`` reuses every completed run folder
whose configuration matches and redoes only the unfinished ones, so an interrupted part picks
up at the run it stopped in. ``--reuse`` runs nothing and reads both compare folders.

Each seed of a size draws its own subset (nested across sizes within the seed), and every
method runs once per seed there, TF-IDF included: the ± is the spread of which texts were
labelled as well as of training randomness (initialisation, order, dropout, SetFit's pairs).
tfidf-logreg and embed-logreg therefore run 5 times per small size (seconds each).

What to expect at the smallest size: compare cuts validation to the training size per class,
so at 8 per class the recommendation reads 16 validation texts, whose binomial standard error
near 0.5 is ±0.125 (two texts); accuracies move in steps of 6.25 points there, far coarser than
the one-point check. One run on rotten_tomatoes at 8 per class (seed 42): tfidf-logreg scored
0.50 on validation and 0.569 on test, embed-logreg 0.19 (3 of 16) and 0.527, head 0.50 and 0.498.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = "tfidf-logreg,embed-logreg,setfit,setfit-lora,head,lora,full"
# A recommendation "holds up" when its mean test accuracy is within this of the best method's.
TOLERANCE = 0.01
# From this many texts per class on, a LoRA-based method must be at least as accurate as the
# few-shot methods (SetFit).
LORA_FROM_PER_CLASS = 64
# Two means closer than this are equal (float noise from averaging seeds).
TIE = 1e-9


@dataclass(frozen=True)
class CurvePart:
    """One ``loralab compare`` of the curve: its sizes, seeds and methods, in its own folder."""

    name: str
    sizes: str
    seeds: int
    methods: list[str]

    def command(self, data: str, folder: Path, extra: Sequence[str]) -> list[str]:
        return [
            sys.executable,
            "-m",
            "loralab",
            "compare",
            data,
            "--output-dir",
            str(folder),
            "--train-sizes",
            self.sizes,
            "--seeds",
            str(self.seeds),
            "--methods",
            ",".join(self.methods),
            *extra,
        ]


@dataclass
class SizePoint:
    """What the curve shows at one training-set size."""

    size: str  # texts per class, or "all"
    train_texts: int | None
    validation_texts: int | None
    # method -> (mean test accuracy, its std over seeds, number of runs)
    test_accuracy: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    recommended: str | None = None


def size_order(size: str) -> float:
    return math.inf if size == "all" else float(size)


def size_points(parts: Sequence[dict], train_texts: dict[str, int]) -> list[SizePoint]:
    """The sizes of every part's ``results.json``, smallest first; ``train_texts`` gives the
    real number of training texts at each size (read from the runs' manifests)."""
    points: dict[str, SizePoint] = {}
    for results in parts:
        validation = {str(r["train_size"]): r.get("validation_texts") for r in results["runs"]}
        for row in results["summary"]:
            size = str(row["train_size"])
            point = points.setdefault(size, SizePoint(size, train_texts.get(size), validation.get(size)))
            std = row.get("test_accuracy_std") or 0.0
            point.test_accuracy[row["method"]] = (row["test_accuracy"], std, int(row.get("seeds", 1)))
        for size, chosen in (results.get("recommendations") or {}).items():
            if str(size) in points:
                points[str(size)].recommended = chosen["method"]
    return sorted(points.values(), key=lambda p: size_order(p.size))


@dataclass(frozen=True)
class SizeCheck:
    """The acceptance checks at one size; ``None`` where a check does not apply."""

    size: str
    best: str | None
    best_accuracy: float | None
    recommended: str | None
    recommended_accuracy: float | None
    gap: float | None  # best minus recommended mean test accuracy
    recommended_holds: bool  # within TOLERANCE of the best
    best_lora: str | None
    best_lora_accuracy: float | None
    few_shot: str | None
    few_shot_accuracy: float | None
    lora_beats_few_shot: bool | None  # None below LORA_FROM_PER_CLASS or without a few-shot run

    @property
    def passed(self) -> bool:
        return self.recommended_holds and self.lora_beats_few_shot is not False


def _best(accuracy: dict[str, tuple[float, float, int]], names: Callable[[str], bool]):
    chosen = [(mean, method) for method, (mean, _, _) in accuracy.items() if names(method)]
    if not chosen:
        return None, None
    mean, method = max(chosen, key=lambda pair: (pair[0], pair[1]))
    return method, mean


def check_size(
    point: SizePoint,
    *,
    lora_based: Callable[[str], bool],
    reference: Callable[[str], bool],
    few_shot: Callable[[str], bool],
) -> SizeCheck:
    """Whether the recommended method's mean test accuracy is within :data:`TOLERANCE` of the
    best method's (references such as the majority class are never "best": they cannot be
    recommended), and, from :data:`LORA_FROM_PER_CLASS` per class on, whether the best
    LoRA-based method is at least as accurate as the best few-shot method run at that size."""
    accuracy = point.test_accuracy
    best, best_accuracy = _best(accuracy, lambda m: not reference(m))
    recommended = point.recommended
    recommended_accuracy = accuracy[recommended][0] if recommended in accuracy else None
    gap = None
    if best_accuracy is not None and recommended_accuracy is not None:
        gap = best_accuracy - recommended_accuracy
    holds = gap is not None and gap <= TOLERANCE + TIE
    best_lora, best_lora_accuracy = _best(accuracy, lora_based)
    # A few-shot recipe that trains adapters (setfit-lora) is LoRA-based; it is weighed against
    # the few-shot methods that are not.
    few, few_accuracy = _best(accuracy, lambda m: few_shot(m) and not lora_based(m))
    beats: bool | None = None
    if size_order(point.size) >= LORA_FROM_PER_CLASS and few_accuracy is not None:
        beats = best_lora_accuracy is not None and best_lora_accuracy >= few_accuracy - TIE
    return SizeCheck(
        point.size,
        best,
        best_accuracy,
        recommended,
        recommended_accuracy,
        gap,
        holds,
        best_lora,
        best_lora_accuracy,
        few,
        few_accuracy,
        beats,
    )


def _percent(mean: float | None, std: float | None = None, runs: int = 1) -> str:
    if mean is None:
        return "–"
    text = f"{100 * mean:.1f}"
    return text + (f" ± {100 * (std or 0.0):.1f}" if runs > 1 else "")


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def curve_table(points: Sequence[SizePoint], checks: Sequence[SizeCheck], methods: Sequence[str]) -> str:
    """The Markdown table: a row per size, mean ± std test accuracy (%) per method, the
    recommended method and how many points its mean trails the best method's."""
    header = ["per class", "train texts", "val texts", *methods, "recommended", "gap to best (pts)"]
    alignment = ["---:"] * (3 + len(methods)) + ["---", "---:"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(alignment) + " |"]
    for point, check in zip(points, checks, strict=True):
        cells = [point.size, _count(point.train_texts), _count(point.validation_texts)]
        for method in methods:
            found = point.test_accuracy.get(method)
            cells.append(_percent(*found) if found else "–")
        cells.append(f"**{check.recommended}**" if check.recommended else "–")
        cells.append("–" if check.gap is None else f"{100 * check.gap:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _named(method: str | None, accuracy: float | None) -> str:
    return "–" if method is None else f"{method} {_percent(accuracy)}"


def _verdict(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "**NO**")


def checks_table(checks: Sequence[SizeCheck]) -> str:
    """The acceptance checks per size, as a Markdown table."""
    lines = [
        f"| per class | best on test | recommended | within {100 * TOLERANCE:g} pt | best LoRA-based "
        f"| few-shot | LoRA-based ≥ few-shot |",
        "| ---: | --- | --- | --- | --- | --- | --- |",
    ]
    for c in checks:
        lines.append(
            f"| {c.size} | {_named(c.best, c.best_accuracy)} "
            f"| {_named(c.recommended, c.recommended_accuracy)} | {_verdict(c.recommended_holds)} "
            f"| {_named(c.best_lora, c.best_lora_accuracy)} "
            f"| {_named(c.few_shot, c.few_shot_accuracy)} | {_verdict(c.lora_beats_few_shot)} |"
        )
    return "\n".join(lines)


def _train_texts(folder: Path, results: dict) -> dict[str, int]:
    """Training texts at each size, from the manifest of one run of that size."""
    found: dict[str, int] = {}
    for row in results["runs"]:
        size = str(row["train_size"])
        if size not in found:
            manifest = json.loads((folder / row["run"] / "manifest.json").read_text())
            found[size] = manifest["data"]["splits"]["train"]["size"]
    return found


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    temporary.replace(path)


def _fail(message: str) -> None:
    print(message, file=sys.stderr)
    raise SystemExit(2)


def _registry_traits() -> tuple[Callable[[str], bool], Callable[[str], bool]]:
    """``(lora_based, reference)`` from the method registry's traits."""
    from loralab.methods import get_method

    return (lambda m: get_method(m).lora_based), (lambda m: get_method(m).reference)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", help="A data set as for loralab compare, e.g. ../shared/data/sst2.")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument(
        "--few-shot-methods",
        default="setfit,setfit-lora",
        help="Methods run only at the small sizes; from 64 per class on, the best LoRA-based method "
        "(lora, setfit-lora) must match the best of those that are not LoRA-based.",
    )
    parser.add_argument("--small-sizes", default="8,16,32,64")
    parser.add_argument("--small-seeds", type=int, default=5)
    parser.add_argument("--large-sizes", default="256,all", help="Empty for none.")
    parser.add_argument("--large-seeds", type=int, default=3)
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "learning-curves")
    parser.add_argument("--reuse", action="store_true", help="Run nothing; read the compare folders.")
    parser.add_argument("--plot", type=Path, help="PNG path (default docs/learning-curves-DATA.png).")
    parser.add_argument(
        "--output", type=Path, help="JSON path (default benchmarks/results/learning_curves-DATA.json)."
    )
    parser.add_argument("--extra", default="", help="Extra flags for loralab compare, e.g. '--subset 400'.")
    parser.add_argument(
        "--read-from",
        type=Path,
        action="append",
        default=[],
        help="A finished 'loralab compare' folder whose sizes join the curve (repeatable), e.g. the "
        "'all' point of 'loralab compare DATA --seeds 3' (leave its sizes out of this command's).",
    )
    args = parser.parse_args()

    name = Path(args.data.rstrip("/")).name.replace(":", "-")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    few_shot = {m.strip() for m in args.few_shot_methods.split(",") if m.strip()}
    parts = [CurvePart("small", args.small_sizes, args.small_seeds, methods)]
    if args.large_sizes.strip():
        parts.append(
            CurvePart("large", args.large_sizes, args.large_seeds, [m for m in methods if m not in few_shot])
        )

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    loaded, commands, wall = [], {}, {}
    for part in parts:
        folder = args.runs_dir / f"{name}-{part.name}"
        command = part.command(args.data, folder, args.extra.split())
        commands[part.name] = " ".join(["loralab", *command[3:]])
        if not args.reuse:
            print(f"$ {commands[part.name]}", flush=True)
            start = time.perf_counter()
            done = subprocess.run(command, env=env)
            if done.returncode:
                _fail(f"loralab compare stopped ({done.returncode}) in {folder}; run this again to resume.")
            wall[part.name] = time.perf_counter() - start
        results_path = folder / "results.json"
        if not results_path.exists():
            _fail(f"{results_path} does not exist: run without --reuse first (compare writes it at the end).")
        results = json.loads(results_path.read_text())
        compare_info = json.loads((folder / "compare.json").read_text())
        loaded.append((folder, results, compare_info))

    for extra_folder in args.read_from:
        if not (extra_folder / "results.json").exists():
            _fail(f"{extra_folder}: no results.json; it is not a finished loralab compare folder.")
        results = json.loads((extra_folder / "results.json").read_text())
        compare_info = json.loads((extra_folder / "compare.json").read_text())
        loaded.append((extra_folder, results, compare_info))
        commands[str(extra_folder)] = "(read)"
    # A method at a size comes from the first folder that has it: this command's own, then the
    # --read-from folders in the order given (a method rerun elsewhere replaces its old runs).
    seen: set[tuple[str, str]] = set()
    for folder, results, _ in loaded:
        pairs = {(str(r["train_size"]), r["method"]) for r in results["runs"]}
        for size, method in sorted(pairs & seen):
            print(f"{folder}: {method} at {size} per class was read from an earlier folder; skipped here.")
        for key in ("runs", "summary"):
            results[key] = [r for r in results[key] if (str(r["train_size"]), r["method"]) not in seen]
        seen |= pairs
    for _, results, compare_info in loaded:  # results.json written before it recorded the pool
        pool = compare_info.get("data_summary", {}).get("splits", {}).get("validation", {}).get("size")
        for row in results["runs"]:
            if pool is not None:
                row.setdefault("validation_pool", pool)
    from loralab.runs.recommend import recommend_runs

    # Judged by today's rule (cross-fitted validation where stored) over every folder's runs at a
    # size together, whatever rule each compare used.
    recommendations = recommend_runs([r for _, results, _ in loaded for r in results["runs"]])

    fingerprints = {results["fingerprint"] for _, results, _ in loaded}
    if len(fingerprints) > 1:
        _fail(
            f"The compare folders {', '.join(str(f) for f, _, _ in loaded)} hold different splits "
            f"({', '.join(sorted(fingerprints))}); remove the stale one and run again."
        )
    train_texts: dict[str, int] = {}
    for folder, results, _ in loaded:
        train_texts |= _train_texts(folder, results)
    merged = {
        "runs": [r for _, results, _ in loaded for r in results["runs"]],
        "summary": [r for _, results, _ in loaded for r in results["summary"]],
        "recommendations": recommendations,
    }
    points = size_points([merged], train_texts)
    lora_based, reference = _registry_traits()
    checks = [
        check_size(p, lora_based=lora_based, reference=reference, few_shot=few_shot.__contains__)
        for p in points
    ]
    shown = [m for m in methods if any(m in p.test_accuracy for p in points)]

    from loralab.reports.plots import learning_curves

    summary = [row for _, results, _ in loaded for row in results["summary"]]
    classes = len(loaded[0][2]["data_summary"]["labels"])
    all_per_class = train_texts["all"] / classes if "all" in train_texts else None
    plot = args.plot or ROOT / "docs" / f"learning-curves-{name.replace('_', '-')}.png"
    _write_atomically(plot, learning_curves(summary, all_per_class))

    record = {
        "data": args.data,
        "commands": commands,
        "wall_seconds_of_this_invocation": wall,
        "reused": args.reuse,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "compare_folders": [str(folder) for folder, _, _ in loaded],
        "fingerprint": fingerprints.pop(),
        "validation_cut": loaded[0][1].get("validation_cut"),
        "tolerance": TOLERANCE,
        "sizes": [
            {
                "per_class": p.size,
                "train_texts": p.train_texts,
                "validation_texts": p.validation_texts,
                "test_accuracy": {
                    m: {"mean": mean, "std": std, "runs": runs}
                    for m, (mean, std, runs) in p.test_accuracy.items()
                },
                "check": asdict(c) | {"passed": c.passed},
                "recommendation": recommendations.get(p.size),
            }
            for p, c in zip(points, checks, strict=True)
        ],
        "passed": all(c.passed for c in checks),
        "plot": str(plot),
    }
    target = args.output or ROOT / "benchmarks" / "results" / f"learning_curves-{name}.json"
    _write_atomically(target, (json.dumps(record, indent=2) + "\n").encode())

    print(curve_table(points, checks, shown))
    print()
    print(checks_table(checks))
    print()
    print(f"Wrote {target} and {plot}")
    failed = [c.size for c in checks if not c.passed]
    if failed:
        print(f"Acceptance checks failed at {', '.join(failed)} per class.")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
