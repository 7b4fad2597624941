"""Which method to use: the best on validation, or a cheaper one that is as good within noise.

This is the one-standard-error rule (Hastie, Tibshirani & Friedman, *The Elements of Statistical
Learning*, §7.10): among the methods whose mean validation accuracy is within one standard error
of the best, take the cheapest. The standard error is that of the *difference* between the best
and the method weighed against it, because the methods were scored on the same texts: a seed whose
validation texts were hard lowers every method, and that shared luck is no evidence for or
against either. It has two parts (added in quadrature):

- over seeds: the spread of the per-seed differences divided by the square root of their number
  (paired by seed; a method whose figures do not vary with the seed ran once and pairs with every
  seed). When each seed drew its own validation texts (a learning curve's cut), this part holds
  those texts' luck as well as training's;
- over texts: the binomial standard error ``sqrt(p (1 - p) / n)`` of the best accuracy ``p``
  (smoothed by one right and one wrong answer, so a perfect score keeps a non-zero error) on the
  ``n`` texts every seed read — the whole validation split the seeds' texts were drawn from, or
  the texts of the one seed there is. No number of seeds averages this away (±0.018 for p = 0.8
  on 500 texts).

A method within noise of the best is passed over when another method is above it beyond the
noise of their own difference: a best that swings from seed to seed has a wide window, and a
cheap method inside it may still be clearly worse than a steadier one just below the best.

Two amendments keep small validation splits from handing the verdict to whichever cheap method
the noise favoured:

- a cheaper method is taken only if it is also at most :data:`TOLERANCE` (one point) below the
  best on validation. On a few hundred texts one standard error is several points, and "not
  shown to be worse" is then weak evidence: in loralab's learning curves (docs/results.md) the
  cheaper methods the plain rule chose were 1.4–3.4 points below the best on validation and 4.4–6.7
  below it on test;
- with at most :data:`FEW_SHOT_PER_CLASS` training texts in every class, a method built for few
  labelled texts (the ``few_shot`` trait: SetFit and setfit-lora) that is within noise of the best
  is preferred to the cheaper ones. There validation holds a few dozen texts and cannot separate
  the methods, so the choice falls back on what few-shot benchmarks measured on many data sets:
  SetFit ahead of fine-tuning and of a classifier on frozen embeddings from 8 to 64 labelled texts
  per class (Tunstall et al. 2022, *Efficient Few-Shot Learning Without Prompts*), as on
  rotten_tomatoes and SST-2 here.

Test figures are reported elsewhere and never enter.

When validation's classes are uneven — the rarest has fewer than half as many texts as the most
common (:data:`loralab.config.UNEVEN_CLASSES`) — the rule reads **balanced accuracy** instead of
accuracy: the mean over classes of the share of each class's texts classified right (scikit-learn's
``balanced_accuracy_score``; Brodersen et al. 2010, *The balanced accuracy and its posterior
distribution*). Accuracy there rewards a method for favouring the common classes — on 95/5 data
always answering the common class scores 0.95 — while in balanced accuracy a rare class counts as
much as a common one and the majority class scores 1/k. With equal classes the two are the same
figure, so a learning curve's per-class cuts of such data are judged alike. Its binomial error is
that of an accuracy on fewer texts: ``sqrt(sum_c p (1 - p) / n_c) / k`` is the error of ``p`` on
``k² / sum_c (1 / n_c)`` texts (:func:`balanced_texts`), which is what enters below.

Methods that keep their best epoch on validation are judged by their cross-fitted validation
accuracy (:mod:`loralab.training.selection`): the best epoch's score on texts that did not
choose it. Their plain validation accuracy is the best of many noisy scores and on small data
ran 5 to 14 points above test accuracy, which made the rule favour them.

Costs are the methods' own ``cost_rank`` traits (see :class:`loralab.methods.base.Method`);
between equal ranks the shorter measured training time wins. Reference methods (the majority
class, an untrained head) are never recommended, but the sentence says when the chosen method
does not beat them beyond noise.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from loralab.config import uneven

# Said under a table whose validation column shows cross-fitted figures, marked with it.
CROSSFIT_MARK = "†"
CROSSFIT_NOTE = (
    f"{CROSSFIT_MARK} cross-fitted: the method chose its best epoch on validation, so each half of "
    "the validation split is scored by the epoch the other half chose (the plain, optimistic figure "
    "is in results.json); the recommendation reads these."
)

# Two accuracies closer than this are equal (float noise from averaging seeds).
TIE = 1e-9
# The most validation accuracy given up for a cheaper method, however wide the noise.
TOLERANCE = 0.01
# Training texts per class (in the largest class) up to which the data are few-shot: the range
# SetFit was evaluated on.
FEW_SHOT_PER_CLASS = 64
# One standard error from which the plain sentence says the verdict is uncertain (3 points: a
# validation split of about 180 texts at 0.8 accuracy).
NOISY = 0.03
ACCURACY = "accuracy"
BALANCED_ACCURACY = "balanced accuracy"


def judged_by(class_texts: dict[str, int] | None) -> str:
    """What the rule reads on validation texts with ``class_texts`` per class: balanced accuracy
    when the classes are uneven (see the module's docstring), else accuracy.

    >>> judged_by({"a": 50, "b": 50}), judged_by({"a": 90, "b": 10})
    ('accuracy', 'balanced accuracy')
    """
    return BALANCED_ACCURACY if uneven(class_texts) else ACCURACY


def balanced_texts(class_texts: dict[str, int]) -> int:
    """The number of texts on which an accuracy is as uncertain as a balanced accuracy measured on
    ``class_texts`` per class: ``k² / sum_c (1 / n_c)``, all the texts when the classes are equal.

    >>> balanced_texts({"a": 50, "b": 50}), balanced_texts({"a": 90, "b": 10})
    (100, 36)
    """
    counts = [n for n in class_texts.values() if n > 0]
    return round(len(counts) ** 2 / sum(1.0 / n for n in counts)) if counts else 0


def balanced_accuracy(split_metrics: dict) -> float | None:
    """Balanced accuracy from a split's ``metrics.json`` entry: the mean recall over the classes
    that have texts in the split (None if it has no per-class figures)."""
    recalls = [c["recall"] for c in (split_metrics.get("per_class") or {}).values() if c.get("support")]
    return statistics.fmean(recalls) if recalls else None


@dataclass(frozen=True)
class MethodResult:
    """What the recommendation reads of one method at one training-set size."""

    method: str
    validation_accuracies: tuple[float, ...]  # one per seed
    validation_texts: int
    cost_rank: int
    train_seconds: float | None = None  # mean over seeds
    reference: bool = False
    validation_drawn_per_seed: bool = False  # each seed was scored on its own sample of texts
    validation_pool: int | None = None  # the texts those samples were drawn from
    crossfit: bool = False  # the accuracies are cross-fitted: the method chose an epoch on validation
    seeds: tuple[int, ...] = ()  # the seed of each accuracy, to pair methods run on the same texts
    few_shot: bool = False  # built for a few labelled texts per class (SetFit)
    # What the accuracies are. For balanced accuracy, validation_texts and validation_pool are
    # the texts an accuracy would be as certain on (:func:`balanced_texts`).
    judged_by: str = ACCURACY

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
    noise: float  # one standard error of the difference that decided (see :func:`recommend`)
    noise_kind: str  # what that standard error is made of
    noise_against: str | None  # the method the best was weighed against (None: nothing cheaper)
    within_noise: tuple[str, ...]  # the methods as good as the best, cheapest first (some may be
    # passed over: below another method beyond noise)
    reference_method: str | None
    reference_validation_accuracy: float | None
    reason: str  # one sentence, with the figures and the rule's terms
    summary: str = ""  # the same verdict in plain words, for a reader who is not a statistician
    # What validation_accuracy and best_validation_accuracy are: accuracy, or balanced accuracy
    # when validation's classes are uneven.
    judged_by: str = ACCURACY

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


def standard_error(result: MethodResult) -> tuple[float, str]:
    """One standard error of ``result``'s own mean validation accuracy, and what it is made of:
    for a method with nothing to be weighed against, or that cannot be paired with the other."""
    seeds = len(result.validation_accuracies)
    over_seeds = result.seed_spread / math.sqrt(seeds)
    texts = result.validation_texts
    if result.validation_drawn_per_seed:  # distinct samples, overlapping once they cover the pool
        texts = min(texts * seeds, result.validation_pool or texts * seeds)
    binomial = binomial_standard_error(result.accuracy, texts)
    on_texts = _on_texts(result, texts)
    if seeds < 2:
        return binomial, on_texts
    spread = f"spread of {result.method} over {seeds} seeds"
    if result.validation_drawn_per_seed:
        # The seeds' spread already holds the luck of each seed's texts; the binomial is a floor.
        return (over_seeds, spread) if over_seeds > binomial else (binomial, on_texts)
    return math.hypot(over_seeds, binomial), f"{spread} and {on_texts}"


def _on_texts(result: MethodResult, texts: int) -> str:
    if result.judged_by == BALANCED_ACCURACY:
        return f"binomial standard error of a balanced accuracy, as on {texts:,} validation texts"
    return f"binomial standard error on {texts:,} validation texts"


def paired_differences(best: MethodResult, other: MethodResult) -> list[float]:
    """``best`` minus ``other`` on the same validation texts: seed by seed on the seeds both ran
    or, when every seed read the same texts, a method that ran once (its figures do not vary with
    the seed) against every seed of the other. Empty when they cannot be paired (seeds not
    recorded or repeated, none in common)."""
    mine, theirs = best.validation_accuracies, other.validation_accuracies
    if not (best.validation_drawn_per_seed or other.validation_drawn_per_seed):
        if len(theirs) == 1:
            return [a - theirs[0] for a in mine]
        if len(mine) == 1:
            return [mine[0] - b for b in theirs]
    if not (_seeded(best) and _seeded(other)):
        return []
    by_seed = dict(zip(other.seeds, theirs, strict=True))
    return [a - by_seed[seed] for seed, a in zip(best.seeds, mine, strict=True) if seed in by_seed]


def _seeded(result: MethodResult) -> bool:
    """Whether each of ``result``'s accuracies has its own seed."""
    seeds = result.seeds
    return len(seeds) == len(result.validation_accuracies) and len(set(seeds)) == len(seeds)


@dataclass(frozen=True)
class Gap:
    """How far a method is below the best on validation, and one standard error of that."""

    difference: float  # best minus the method, mean over the seeds they are compared on
    error: float
    kind: str  # what the error is made of

    @property
    def within(self) -> bool:
        return self.difference <= self.error + TIE


def gap(best: MethodResult, other: MethodResult) -> Gap:
    """``other``'s distance below ``best`` and its standard error (see the module's docstring)."""
    differences = paired_differences(best, other)
    if not differences:  # unpaired: the two means' own errors add up
        (mine, my_kind), (theirs, their_kind) = standard_error(best), standard_error(other)
        return Gap(
            best.accuracy - other.accuracy,
            math.hypot(mine, theirs),
            f"{best.method}'s {my_kind} and {other.method}'s {their_kind}, unpaired",
        )
    seeds = len(differences)
    texts = best.validation_texts
    if best.validation_drawn_per_seed and seeds >= 2:
        # Every seed drew its texts from one validation split: that split's luck is shared.
        texts = best.validation_pool or texts * seeds
    binomial = binomial_standard_error(best.accuracy, texts)
    on_texts = _on_texts(best, texts)
    if seeds < 2:
        return Gap(differences[0], binomial, on_texts)
    over_seeds = statistics.stdev(differences) / math.sqrt(seeds)
    return Gap(
        statistics.fmean(differences),
        math.hypot(over_seeds, binomial),
        f"spread of the {seeds} seeds' differences and {on_texts}",
    )


def _cheapness(result: MethodResult) -> tuple:
    seconds = result.train_seconds if result.train_seconds is not None else math.inf
    return (result.cost_rank, seconds, -result.accuracy, result.method)


def _beaten(result: MethodResult, others: Sequence[MethodResult]) -> tuple[MethodResult, Gap] | None:
    """The most accurate method above ``result`` beyond noise, and that gap; ``None`` if none is."""
    for other in sorted(others, key=lambda r: -r.accuracy):
        if other.accuracy > result.accuracy and not (found := gap(other, result)).within:
            return other, found
    return None


def recommend(
    results: Sequence[MethodResult],
    *,
    train_per_class: int | None = None,
    class_texts: dict[str, int] | None = None,
) -> Recommendation | None:
    """The method to use among ``results`` (one training-set size), or ``None`` if none qualifies.
    ``train_per_class`` is the number of training texts in the largest class, if known;
    ``class_texts`` the validation split's texts per class, named in the sentence when the
    results are balanced accuracies."""
    candidates = [r for r in results if not r.reference and r.validation_accuracies and r.validation_texts]
    if not candidates:
        return None
    best = max(candidates, key=lambda r: (r.accuracy, [-x for x in _cheapness(r)[:2]]))
    gaps = {r.method: gap(best, r) for r in candidates if r is not best}
    within = sorted((r for r in candidates if r is best or gaps[r.method].within), key=_cheapness)
    # A method within noise of the best can still be below another method beyond noise (a best
    # that varies much from seed to seed has a wide window): it is passed over.
    beaten_by = {r.method: _beaten(r, candidates) for r in within}
    eligible = [r for r in within if beaten_by[r.method] is None]  # the best is never beaten
    few_shot_data = train_per_class is not None and train_per_class <= FEW_SHOT_PER_CLASS
    few_shot = [r for r in eligible if r.few_shot] if few_shot_data else []
    if few_shot:
        chosen = max(few_shot, key=lambda r: r.accuracy)
    else:
        chosen = next(r for r in eligible if r is best or gaps[r.method].difference <= TOLERANCE + TIE)
    # The cheaper methods passed over (the few-shot sentence names its own).
    skipped = [] if few_shot and chosen is not best else within[: within.index(chosen)]
    references = [r for r in results if r.reference and r.validation_accuracies]
    floor = max(references, key=lambda r: r.accuracy) if references else None
    metric = best.judged_by

    def weighed_against(other: MethodResult) -> tuple[str, float, str]:
        return other.method, gaps[other.method].error, gaps[other.method].kind

    against: str | None
    if few_shot and chosen is not best:
        against, noise, kind = weighed_against(chosen)
        others = ", ".join(r.method for r in within if not r.few_shot)
        rivals = ", ".join(r.method for r in few_shot if r is not chosen)
        reason = (
            f"{chosen.method} ({chosen.accuracy:.4f}) is within one standard error of the best on "
            f"validation, {best.method} ({best.accuracy:.4f}): ±{noise:.4f} (the {kind}); with at most "
            f"{train_per_class} training texts per class validation cannot tell them apart, and up to "
            f"{FEW_SHOT_PER_CLASS} a method built for few labelled texts is preferred to {others} "
            "(SetFit led fine-tuning and frozen embeddings from 8 to 64 per class in few-shot "
            "benchmarks, Tunstall et al. 2022)"
        )
        if rivals:
            reason += f"; {rivals}, also built for few texts, scored less on validation"
    elif chosen is best and skipped:
        against, noise, kind = weighed_against(skipped[0])
        reason = f"{best.method} has the best validation {metric} ({best.accuracy:.4f})"
    elif chosen is best:
        # The error that decided: against the cheaper method that came nearest to being within it.
        cheaper = [r for r in candidates if _cheapness(r) < _cheapness(best)]
        nearest = min(
            cheaper,
            key=lambda r: gaps[r.method].difference / max(gaps[r.method].error, TIE),
            default=None,
        )
        if nearest is None:
            against = None
            noise, kind = standard_error(best)
            reason = (
                f"{best.method} has the best validation {metric} ({best.accuracy:.4f}) and is the cheapest"
            )
        else:
            against, noise, kind = weighed_against(nearest)
            reason = (
                f"{best.method} has the best validation {metric} ({best.accuracy:.4f}) and no cheaper "
                f"method is within one standard error of it: the nearest, {nearest.method} "
                f"({nearest.accuracy:.4f}), is beyond ±{noise:.4f} (the {kind})"
            )
    else:
        against, noise, kind = weighed_against(chosen)
        reason = (
            f"{chosen.method} is the cheapest method within one standard error and one point of the best, "
            f"{best.method}: "
            f"{chosen.accuracy:.4f} against {best.accuracy:.4f} on validation, within ±{noise:.4f} "
            f"(the {kind})"
        )
    for passed in skipped:
        beating = beaten_by[passed.method]
        below = gaps[passed.method].difference
        if beating is not None:
            beater, beaten = beating
            why = f"{beater.method} ({beater.accuracy:.4f}) is above it beyond its ±{beaten.error:.4f}"
        elif below > TOLERANCE + TIE:
            why = (
                f"{100 * below:.1f} points below it, more than the {100 * TOLERANCE:.0f} point "
                "loralab gives up for a cheaper method"
            )
        else:  # within a point of the best, which is the few-shot method
            why = (
                f"with at most {train_per_class} training texts per class a method built for few "
                "labelled texts is preferred"
            )
        reason += (
            f"; {passed.method} ({passed.accuracy:.4f}) is within one standard error of {best.method} "
            f"too, but {why}"
        )
    crossfitted = [r.method for r in candidates if r.crossfit]
    if crossfitted:
        reason += (
            f"; {', '.join(crossfitted)} chose an epoch on validation and "
            f"{'is' if len(crossfitted) == 1 else 'are'} judged on the texts that did not choose it"
        )
    if metric == BALANCED_ACCURACY:
        counts = [n for n in (class_texts or {}).values() if n > 0]
        shown = f" ({min(counts):,} to {max(counts):,} texts per class)" if counts else ""
        reason += (
            f"; judged by balanced accuracy, the mean of the classes' recalls, because validation's "
            f"classes are uneven{shown}"
        )
    if floor is not None and gap(chosen, floor).within:
        reason += (
            f"; but it does not beat {floor.method} ({floor.accuracy:.4f}) beyond noise, "
            "so no method learned something usable from this data"
        )
        summary = (
            "No method did better than always answering the most common class by more than "
            "chance allows on these validation texts, so none is worth using yet: more labelled "
            "texts are needed, above all of the rarer classes."
        )
    elif few_shot and chosen is not best:
        summary = (
            f"With this few labelled texts, {chosen.method}, a method built for few examples, "
            f"is as good as the top scorer, {best.method}, as far as the validation texts can tell."
        )
    elif chosen is not best:
        summary = (
            f"{chosen.method} is as good as the top scorer, {best.method}, as far as the validation "
            "texts can tell, and costs less to train."
        )
    elif skipped:
        summary = (
            f"{chosen.method} scored best on the validation texts; the cheaper methods that came "
            "close were still further behind than loralab accepts for a saving."
        )
    elif any(_cheapness(r) < _cheapness(chosen) for r in candidates):
        summary = f"{chosen.method} scored best on the validation texts, and no cheaper method came close."
    else:
        summary = f"{chosen.method} scored best on the validation texts and is also the cheapest to train."
    if noise >= NOISY and not summary.startswith("No method"):
        summary += (
            f" The validation texts are few, so scores closer than about {100 * noise:.0f} points "
            "cannot be told apart: more labelled texts for validation would make this verdict firmer."
        )
    if metric == BALANCED_ACCURACY:
        summary = (
            "The classes are uneven, so every method is judged by how well it does on each class, "
            "the rare ones counting as much as the common ones (balanced accuracy), not by its "
            "share of texts right, which a method raises by favouring the common classes. " + summary
        )
    return Recommendation(
        method=chosen.method,
        validation_accuracy=chosen.accuracy,
        best_method=best.method,
        best_validation_accuracy=best.accuracy,
        noise=noise,
        noise_kind=kind,
        noise_against=against,
        within_noise=tuple(r.method for r in within),
        reference_method=floor.method if floor else None,
        reference_validation_accuracy=floor.accuracy if floor else None,
        reason=reason + ".",
        summary=summary,
        judged_by=metric,
    )


def method_traits(method: str) -> tuple[int, bool, bool]:
    """``(cost_rank, reference, few_shot)`` of a registered method."""
    # deferred: the rule itself is arithmetic; loralab.methods imports torch and transformers (~4 s)
    from loralab.methods import get_method

    found = get_method(method)
    return found.cost_rank, found.reference, found.few_shot


def validation_key(metric: str) -> str:
    """The run row's key of validation ``metric`` (``_crossfit`` and ``_judged`` are added to it)."""
    return "validation_balanced_accuracy" if metric == BALANCED_ACCURACY else "validation_accuracy"


def judged_accuracy(row: dict, metric: str = ACCURACY) -> float | None:
    """The validation accuracy (``metric``: or balanced accuracy) a run is judged by: cross-fitted
    when it chose an epoch on validation. Runs written before balanced accuracy was cross-fitted
    give the plain figure."""
    crossfit = row.get(f"{validation_key(metric)}_crossfit")
    return crossfit if crossfit is not None else row.get(validation_key(metric))


def chose_epoch(row: dict, metric: str = ACCURACY) -> bool:
    """Whether a compare run row chose its epoch on validation, so that its judged figure (of
    ``metric``) is cross-fitted: it trained two epochs or more (with one, nothing was chosen and
    the figure recorded as cross-fitted is the plain one). Rows written before ``epochs`` was
    recorded count as having chosen, as they were shown then."""
    epochs = row.get("epochs")
    return row.get(f"{validation_key(metric)}_crossfit") is not None and (epochs is None or epochs >= 2)


def judged_column(summary_row: dict) -> str:
    """The key of a compare summary row's validation figure as the recommendation reads it
    (results written before cross-fitting have only the plain one)."""
    plain = validation_key(summary_row.get("validation_judged_by") or ACCURACY)
    judged = f"{plain}_judged"
    return judged if summary_row.get(judged) is not None else plain


def judged_header(summary: Sequence[dict], short: bool = True) -> str:
    """The heading of the validation column of a compare table whose rows are ``summary``."""
    balanced = any(r.get("validation_judged_by") == BALANCED_ACCURACY for r in summary)
    if short:
        return "val bal. acc" if balanced else "val acc"
    return "validation balanced acc" if balanced else "validation acc"


def judged_mark(summary_row: dict) -> str:
    """:data:`CROSSFIT_MARK` after a summary row's judged validation figure when it is cross-fitted."""
    shown = summary_row.get(judged_column(summary_row)) is not None
    return CROSSFIT_MARK if summary_row.get("validation_crossfit") and shown else ""


def _size_order(size: str) -> float:
    return math.inf if size == "all" else float(size)


def recommend_runs(
    rows: Sequence[dict],
    traits: Callable[[str], tuple[int, bool, bool]] = method_traits,
    class_texts: dict[str, int] | None = None,
) -> dict[str, dict]:
    """One recommendation per training-set size (smallest first) from compare's run rows.

    ``rows`` carry ``method``, ``train_size``, ``validation_accuracy`` (and
    ``validation_accuracy_crossfit`` with the ``epochs`` it was chosen among, if the run chose
    an epoch on it), ``validation_texts``, ``validation_drawn_per_seed``, ``validation_pool``,
    ``train_seconds`` and ``train_largest_class``; ``traits(method)`` gives its
    ``(cost_rank, reference, few_shot)``.
    ``class_texts`` are the whole validation split's texts per class: when they are uneven
    (:func:`judged_by`) every size is judged by balanced accuracy, read from the rows'
    ``validation_balanced_accuracy`` (``_crossfit``) and ``validation_class_texts``."""
    metric = judged_by(class_texts)
    by_size: dict[str, dict[str, list[dict]]] = {}
    for row in rows:
        by_size.setdefault(str(row["train_size"]), {}).setdefault(row["method"], []).append(row)
    out = {}
    for size, methods in by_size.items():
        results = []
        for method, runs in methods.items():
            cost_rank, reference, few_shot = traits(method)
            mine = [r for r in runs if judged_accuracy(r, metric) is not None] or runs
            seconds = [r["train_seconds"] for r in mine if r.get("train_seconds") is not None]
            texts, pool = int(mine[0].get("validation_texts") or 0), mine[0].get("validation_pool")
            if metric == BALANCED_ACCURACY:
                texts = balanced_texts(mine[0].get("validation_class_texts") or {}) or texts
                pool = balanced_texts(class_texts or {}) or pool
            results.append(
                MethodResult(
                    method=method,
                    validation_accuracies=tuple(
                        a for a in (judged_accuracy(r, metric) for r in mine) if a is not None
                    ),
                    seeds=tuple(r["seed"] for r in mine) if all("seed" in r for r in mine) else (),
                    validation_texts=texts,
                    cost_rank=cost_rank,
                    train_seconds=statistics.fmean(seconds) if seconds else None,
                    reference=reference,
                    # results.json written before this was recorded: learning-curve sizes were cut per seed
                    validation_drawn_per_seed=bool(mine[0].get("validation_drawn_per_seed", size != "all")),
                    validation_pool=pool,
                    crossfit=all(chose_epoch(r, metric) for r in mine),
                    few_shot=few_shot,
                    judged_by=metric,
                )
            )
        chosen = recommend(
            results,
            train_per_class=_train_per_class(size, [r for rs in methods.values() for r in rs]),
            class_texts=class_texts,
        )
        if chosen is not None:
            out[size] = chosen.to_dict()
    return dict(sorted(out.items(), key=lambda item: _size_order(item[0])))


def _train_per_class(size: str, rows: Sequence[dict]) -> int | None:
    """Training texts in the largest class at one size: as recorded, else the learning curve's
    per-class size (results written before it was recorded); unknown for a whole split."""
    recorded = [r["train_largest_class"] for r in rows if r.get("train_largest_class") is not None]
    if recorded:
        return max(recorded)
    return int(size) if size.isdigit() else None


def final_recommendation(by_size: dict[str, dict]) -> dict | None:
    """The recommendation at the largest training set: the method to use on this data."""
    if not by_size:
        return None
    size = max(by_size, key=_size_order)
    return {"train_size": size, **by_size[size]}
