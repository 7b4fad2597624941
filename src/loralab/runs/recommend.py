"""Which method to use: the best on validation, or a cheaper one that is as good within noise.

This is the one-standard-error rule (Hastie, Tibshirani & Friedman, *The Elements of Statistical
Learning*, §7.10): among the methods whose mean validation accuracy is within one standard error
of the best, take the cheapest. The standard error is the larger of two noises: the best method's
spread over seeds, and the binomial standard error ``sqrt(p (1 - p) / n)`` of an accuracy ``p``
(smoothed by one right and one wrong answer, so a perfect score keeps a non-zero error)
measured on ``n`` validation texts (±0.018 for p = 0.8 on 500 texts), so two methods a few
tweets apart are not told apart. Test figures are reported elsewhere and never enter.

Costs are the methods' own ``cost_rank`` traits (see :class:`loralab.methods.base.Method`);
between equal ranks the shorter measured training time wins. Reference methods (the majority
class, an untrained head) are never recommended, but the sentence says when the chosen method
does not beat them beyond noise.

A caveat the numbers cannot remove: methods that choose their best epoch on the same validation
split get a slightly optimistic score there. With a few dozen validation texts (a learning
curve's small sizes) the noise is wide, and the sentence says how wide.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

# Two accuracies closer than this are equal (float noise from averaging seeds).
TIE = 1e-9


@dataclass(frozen=True)
class MethodResult:
    """What the recommendation reads of one method at one training-set size."""

    method: str
    validation_accuracies: tuple[float, ...]  # one per seed
    validation_texts: int
    cost_rank: int
    train_seconds: float | None = None  # mean over seeds
    reference: bool = False

    @property
    def accuracy(self) -> float:
        return statistics.fmean(self.validation_accuracies)

    @property
    def seed_spread(self) -> float:
        values = self.validation_accuracies
        return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class Recommendation:
    method: str
    validation_accuracy: float
    best_method: str
    best_validation_accuracy: float
    noise: float  # one standard error of the best's validation accuracy
    noise_kind: str  # what the standard error is: the seed spread or the binomial one
    within_noise: tuple[str, ...]  # the methods as good as the best, cheapest first
    reference_method: str | None
    reference_validation_accuracy: float | None
    reason: str  # one sentence

    def to_dict(self) -> dict:
        data = asdict(self)
        data["within_noise"] = list(self.within_noise)
        return data


def binomial_standard_error(accuracy: float, texts: int) -> float:
    """Standard error of an accuracy measured on ``texts`` texts.

    The accuracy is smoothed by one right and one wrong answer (Laplace's rule) first: a
    perfect score on 20 texts is not a certainty, and ``sqrt(p (1 - p) / n)`` would call its
    error zero, so every close second would count as beaten.

    >>> round(binomial_standard_error(0.8, 400), 4)
    0.0201
    >>> binomial_standard_error(1.0, 20) > 0.04
    True
    """
    smoothed = (accuracy * texts + 1.0) / (texts + 2.0)
    return math.sqrt(smoothed * (1.0 - smoothed) / texts)


def _cheapness(result: MethodResult) -> tuple:
    seconds = result.train_seconds if result.train_seconds is not None else math.inf
    return (result.cost_rank, seconds, -result.accuracy, result.method)


def recommend(results: Sequence[MethodResult]) -> Recommendation | None:
    """The method to use among ``results`` (one training-set size), or ``None`` if none qualifies."""
    candidates = [r for r in results if not r.reference and r.validation_accuracies and r.validation_texts]
    if not candidates:
        return None
    best = max(candidates, key=lambda r: (r.accuracy, [-x for x in _cheapness(r)[:2]]))
    binomial = binomial_standard_error(best.accuracy, best.validation_texts)
    seeds = len(best.validation_accuracies)
    if best.seed_spread > binomial:
        noise, kind = best.seed_spread, f"spread of {best.method} over {seeds} seeds"
    else:
        noise, kind = binomial, f"binomial standard error on {best.validation_texts:,} validation texts"
    within = sorted((r for r in candidates if best.accuracy - r.accuracy <= noise + TIE), key=_cheapness)
    chosen = within[0]
    references = [r for r in results if r.reference and r.validation_accuracies]
    floor = max(references, key=lambda r: r.accuracy) if references else None
    if chosen is best:
        reason = (
            f"{best.method} has the best validation accuracy ({best.accuracy:.4f}) and no cheaper "
            f"method is within one standard error of it (±{noise:.4f}, the {kind})"
        )
    else:
        reason = (
            f"{chosen.method} is the cheapest method within one standard error (±{noise:.4f}, the {kind}) "
            f"of the best, {best.method}: {chosen.accuracy:.4f} against {best.accuracy:.4f} on validation"
        )
    if floor is not None and chosen.accuracy - floor.accuracy <= noise + TIE:
        reason += (
            f"; but it does not beat {floor.method} ({floor.accuracy:.4f}) beyond noise, "
            "so no method learned something usable from this data"
        )
    return Recommendation(
        method=chosen.method,
        validation_accuracy=chosen.accuracy,
        best_method=best.method,
        best_validation_accuracy=best.accuracy,
        noise=noise,
        noise_kind=kind,
        within_noise=tuple(r.method for r in within),
        reference_method=floor.method if floor else None,
        reference_validation_accuracy=floor.accuracy if floor else None,
        reason=reason + ".",
    )


def method_traits(method: str) -> tuple[int, bool]:
    """``(cost_rank, reference)`` of a registered method."""
    # deferred: the rule itself is arithmetic; loralab.methods imports torch and transformers (~4 s)
    from loralab.methods import get_method

    found = get_method(method)
    return found.cost_rank, found.reference


def _size_order(size: str) -> float:
    return math.inf if size == "all" else float(size)


def recommend_runs(
    rows: Sequence[dict], traits: Callable[[str], tuple[int, bool]] = method_traits
) -> dict[str, dict]:
    """One recommendation per training-set size (smallest first) from compare's run rows.

    ``rows`` carry ``method``, ``train_size``, ``validation_accuracy``, ``validation_texts`` and
    ``train_seconds``; ``traits(method)`` gives its ``(cost_rank, reference)``."""
    by_size: dict[str, dict[str, list[dict]]] = {}
    for row in rows:
        by_size.setdefault(str(row["train_size"]), {}).setdefault(row["method"], []).append(row)
    out = {}
    for size, methods in by_size.items():
        results = []
        for method, mine in methods.items():
            cost_rank, reference = traits(method)
            seconds = [r["train_seconds"] for r in mine if r.get("train_seconds") is not None]
            results.append(
                MethodResult(
                    method=method,
                    validation_accuracies=tuple(
                        r["validation_accuracy"] for r in mine if r.get("validation_accuracy") is not None
                    ),
                    validation_texts=int(mine[0].get("validation_texts") or 0),
                    cost_rank=cost_rank,
                    train_seconds=statistics.fmean(seconds) if seconds else None,
                    reference=reference,
                )
            )
        chosen = recommend(results)
        if chosen is not None:
            out[size] = chosen.to_dict()
    return dict(sorted(out.items(), key=lambda item: _size_order(item[0])))


def final_recommendation(by_size: dict[str, dict]) -> dict | None:
    """The recommendation at the largest training set: the method to use on this data."""
    if not by_size:
        return None
    size = max(by_size, key=_size_order)
    return {"train_size": size, **by_size[size]}
