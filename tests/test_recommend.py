"""The recommendation: best on validation, cheapest within noise, never chosen on test."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from loralab.cli import app
from loralab.config import TrainConfig
from loralab.runs.recommend import (
    MethodResult,
    balanced_texts,
    binomial_standard_error,
    gap,
    judged_by,
    paired_differences,
    recommend,
    recommend_runs,
)


def result(method, accuracies, cost, texts=1000, seconds=1.0, reference=False):
    return MethodResult(method, tuple(accuracies), texts, cost, seconds, reference)


def test_a_tie_within_noise_goes_to_the_cheaper_method():
    # 1,000 validation texts at 0.80: one standard error is 0.0126; 0.79 is within it.
    chosen = recommend(
        [result("lora", [0.80], 5), result("embed-logreg", [0.79], 2), result("tfidf", [0.70], 1)]
    )
    assert chosen.best_method == "lora" and chosen.method == "embed-logreg"
    assert chosen.within_noise == ("embed-logreg", "lora")
    assert chosen.noise == pytest.approx(binomial_standard_error(0.80, 1000))
    assert "embed-logreg is the cheapest method within one standard error" in chosen.reason
    assert "binomial standard error on 1,000 validation texts" in chosen.reason
    assert chosen.summary == (
        "embed-logreg is as good as the top scorer, lora, as far as the validation texts can tell, "
        "and costs less to train."
    )


def test_a_clear_winner_is_kept():
    chosen = recommend([result("full", [0.95], 6), result("embed-logreg", [0.91], 2)])
    assert chosen.method == "full" and chosen.within_noise == ("full",)
    assert chosen.reason.startswith("full has the best validation accuracy (0.9500)")
    assert chosen.summary == "full scored best on the validation texts, and no cheaper method came close."
    cheapest = recommend([result("full", [0.91], 6), result("embed-logreg", [0.95], 2)])
    assert cheapest.summary.endswith("and is also the cheapest to train.")


def test_fewer_validation_texts_widen_the_noise():
    def methods(texts):
        return [result("full", [0.95], 6, texts=texts), result("embed-logreg", [0.93], 2, texts=texts)]

    assert recommend(methods(1000)).within_noise == ("full",)  # 1 s.e. on 1,000 texts is 0.007
    assert recommend(methods(50)).within_noise == ("embed-logreg", "full")  # on 50 texts, 0.031
    # The plain sentence says when the verdict is that uncertain, and not otherwise.
    assert "points cannot be told apart: more labelled texts" in recommend(methods(50)).summary
    assert "cannot be told apart" not in recommend(methods(1000)).summary


def test_the_noise_is_the_standard_error_of_the_difference_over_seeds():
    # Three seeds on the same 1,000 texts against a method that ran once: the differences'
    # standard error over seeds (0.1 / sqrt 3) and the texts' binomial error add up.
    chosen = recommend([result("lora", [0.70, 0.80, 0.90], 5), result("head", [0.75], 3)])
    assert chosen.noise == pytest.approx(np.hypot(0.1 / np.sqrt(3), binomial_standard_error(0.80, 1000)))
    assert "spread of the 3 seeds' differences and binomial standard error on 1,000" in chosen.noise_kind
    assert chosen.within_noise == ("head", "lora")  # 0.05 below, within 0.059
    assert recommend([result("lora", [0.70, 0.80, 0.90], 5), result("head", [0.72], 3)]).within_noise == (
        "lora",
    )


def seeded(method, accuracies, cost, *, seeds=(1, 2, 3, 4, 5), pool=None):
    return MethodResult(
        method,
        tuple(accuracies),
        32,
        cost,
        1.0,
        validation_drawn_per_seed=True,
        validation_pool=pool,
        seeds=tuple(seeds),
    )


def test_methods_scored_on_the_same_texts_are_compared_seed_by_seed():
    # Each seed's texts are easy or hard for both methods alike: setfit is 0.04 ahead on every
    # seed. The shared luck cancels in the differences, so setfit stays the choice ...
    luck = [-0.10, -0.05, 0.0, 0.05, 0.10]
    best = seeded("setfit", [0.80 + x for x in luck], 5, pool=2000)
    other = seeded("embed-logreg", [0.76 + x for x in luck], 2, pool=2000)
    chosen = recommend([best, other])
    assert chosen.method == "setfit"
    # ... with only the pool's luck left: the differences do not spread at all.
    assert chosen.noise == pytest.approx(binomial_standard_error(0.80, 2000))
    assert "binomial standard error on 2,000 validation texts" in chosen.noise_kind
    # The same figures on seeds that did not read the same texts cannot be paired: each mean
    # keeps its own error — its seeds' spread, 0.079 / sqrt 5 = 0.035, above the binomial floor
    # on 5 x 32 texts (0.031) — and 0.04 is within the two together (0.050).
    elsewhere = seeded("embed-logreg", other.validation_accuracies, 2, seeds=(6, 7, 8, 9, 10))
    unpaired = recommend([best, elsewhere])
    assert unpaired.within_noise == ("embed-logreg", "setfit")
    spread = np.std(best.validation_accuracies, ddof=1) / np.sqrt(5)
    assert spread > binomial_standard_error(0.80, 160)
    assert unpaired.noise == pytest.approx(np.hypot(spread, spread))
    assert "unpaired" in unpaired.noise_kind and unpaired.noise_against == "embed-logreg"


def test_differences_that_change_from_seed_to_seed_are_noise():
    # setfit is ahead by 0.04 on average, but by -0.06 to +0.18 seed by seed: within noise.
    best = seeded("setfit", [0.80, 0.80, 0.80, 0.80, 0.80], 5, pool=2000)
    other = seeded("embed-logreg", [0.86, 0.62, 0.76, 0.82, 0.74], 2, pool=2000)
    chosen = recommend([best, other])
    differences = [0.80 - a for a in other.validation_accuracies]
    expected = np.hypot(np.std(differences, ddof=1) / np.sqrt(5), binomial_standard_error(0.80, 2000))
    assert chosen.within_noise == ("embed-logreg", "setfit") and chosen.noise == pytest.approx(expected)
    assert "spread of the 5 seeds' differences" in chosen.noise_kind


def test_a_method_that_chose_its_epoch_is_judged_by_its_cross_fitted_accuracy():
    # head's plain validation accuracy is the best of many epochs on the same texts; the
    # cross-fitted one (texts that did not choose the epoch) is what the rule reads.
    rows = [
        {
            "method": m,
            "train_size": "16",
            "seed": s,
            "validation_accuracy": plain,
            "validation_accuracy_crossfit": crossfit,
            "validation_texts": 32,
            "validation_drawn_per_seed": True,
            "train_seconds": 1.0,
        }
        for s in (1, 2, 3)
        for m, plain, crossfit in (("head", 0.90, 0.60), ("setfit", 0.80, None))
    ]
    chosen = recommend_runs(rows, traits=lambda m: ({"head": 3, "setfit": 5}[m], False, False))["16"]
    assert chosen["method"] == "setfit" and chosen["best_validation_accuracy"] == pytest.approx(0.80)
    assert (
        "head chose an epoch on validation and is judged on the texts that did not choose it"
        in (chosen["reason"])
    )
    plain = [{**r, "validation_accuracy_crossfit": None} for r in rows]
    assert (
        recommend_runs(plain, traits=lambda m: ({"head": 3, "setfit": 5}[m], False, False))["16"]["method"]
        == "head"
    )


def test_equal_cost_goes_to_the_faster_method():
    chosen = recommend([result("lora", [0.80], 5, seconds=90), result("lora-scratch", [0.80], 5, seconds=60)])
    assert chosen.method == "lora-scratch"


def test_references_are_shown_but_never_recommended():
    chosen = recommend([result("majority", [0.90], 0, reference=True), result("tfidf", [0.89], 1)])
    assert chosen.method == "tfidf"
    assert chosen.reference_method == "majority" and chosen.reference_validation_accuracy == 0.90
    assert "does not beat majority (0.9000) beyond noise" in chosen.reason
    assert chosen.summary.startswith("No method did better than always answering the most common class")
    beaten = recommend([result("majority", [0.50], 0, reference=True), result("tfidf", [0.89], 1)])
    assert "does not beat" not in beaten.reason and not beaten.summary.startswith("No method")
    assert recommend([result("majority", [0.5], 0, reference=True)]) is None


def test_test_figures_cannot_change_the_choice():
    rows = [
        {"method": "full", "train_size": "all", "validation_accuracy": 0.95, "validation_texts": 2000},
        {
            "method": "embed-logreg",
            "train_size": "all",
            "validation_accuracy": 0.90,
            "validation_texts": 2000,
        },
    ]
    traits = {"full": (6, False, False), "embed-logreg": (2, False, False)}.get
    first = recommend_runs(rows, traits)
    for row, test in zip(rows, (0.10, 0.99), strict=True):
        row["test_accuracy"] = test
    assert recommend_runs(rows, traits) == first and first["all"]["method"] == "full"


def test_runs_are_grouped_by_size_and_seeds_are_averaged():
    rows = [
        {"method": "lora", "train_size": "all", "validation_accuracy": a, "validation_texts": 5000}
        for a in (0.90, 0.92)
    ] + [
        {"method": "lora", "train_size": "16", "validation_accuracy": 0.6, "validation_texts": 32},
        {"method": "embed-logreg", "train_size": "16", "validation_accuracy": 0.75, "validation_texts": 32},
        {
            "method": "embed-logreg",
            "train_size": "all",
            "validation_accuracy": 0.85,
            "validation_texts": 5000,
        },
    ]
    by_size = recommend_runs(rows)  # the registry's traits
    assert list(by_size) == ["16", "all"]
    assert by_size["16"]["method"] == "embed-logreg"
    assert by_size["all"]["method"] == "lora" and by_size["all"]["validation_accuracy"] == pytest.approx(0.91)


def test_majority_class_predicts_the_training_prior(tmp_path):
    import pandas as pd

    from loralab.runs.train import load_run, train_run

    data = tmp_path / "skewed.csv"
    pd.DataFrame({"text": [f"text {i}" for i in range(100)], "label": ["a"] * 70 + ["b"] * 30}).to_csv(
        data, index=False
    )
    run = train_run(data, TrainConfig(method="majority"), tmp_path / "r", progress=False)
    assert run.classifier.predict(["anything", "else"]) == ["a", "a"]
    np.testing.assert_allclose(run.classifier.predict_proba(["x"]), [[0.7, 0.3]], atol=0.02)
    assert run.manifest["trainable_parameters"] == 0
    reloaded = load_run(run.folder)
    np.testing.assert_array_equal(reloaded.predict_proba(["x"]), run.classifier.predict_proba(["x"]))


def test_compare_ends_with_the_recommendation(synthetic_dir, tmp_path):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app, ["compare", str(synthetic_dir), "--methods", "majority,tfidf-nb,tfidf-logreg", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    chosen = saved["recommendation"]
    assert chosen["method"] in ("tfidf-nb", "tfidf-logreg") and chosen["reference_method"] == "majority"
    assert saved["validation_cut"] is None
    counts = json.loads((out / "majority" / "manifest.json").read_text())["data"]["splits"]["train"][
        "label_counts"
    ]
    assert {r["train_largest_class"] for r in saved["runs"]} == {max(counts.values())}
    summary = {r["method"]: r for r in saved["summary"]}
    assert summary["majority"]["validation_accuracy"] == pytest.approx(0.5)
    text = " ".join(result.output.split())
    assert f"Recommendation: {chosen['method']}. {chosen['summary']} In detail: {chosen['reason']}" in text
    assert text.rindex("Recommendation:") > text.rindex("┘")  # after the table
    assert CliRunner().invoke(app, ["report", str(out)]).exit_code == 0
    markdown = (out / "report.md").read_text()
    assert "## Recommendation" in markdown and f"Use {chosen['method']}. {chosen['summary']}" in markdown


def test_a_perfect_score_on_few_texts_still_has_noise():
    # sqrt(p (1 - p) / n) is 0 at p = 1: every close second would count as beaten.
    chosen = recommend([result("full", [1.0], 6, texts=20), result("tfidf", [0.96], 1, texts=20)])
    assert chosen.noise == pytest.approx(binomial_standard_error(1.0, 20)) and chosen.noise > 0.04
    assert chosen.within_noise == ("tfidf", "full")


def test_seeds_drawing_from_a_small_pool_count_its_texts_once():
    # Three seeds of 500 texts drawn from an 872-text validation split overlap: the binomial
    # error is that of the 872 texts every seed drew from, not of 1,500.
    best = MethodResult(
        "full",
        (0.88, 0.88, 0.88),
        500,
        6,
        1.0,
        validation_drawn_per_seed=True,
        validation_pool=872,
        seeds=(1, 2, 3),
    )
    head = MethodResult("head", (0.70,) * 3, 500, 3, 1.0, validation_drawn_per_seed=True, seeds=(1, 2, 3))
    chosen = recommend([best, head])
    assert chosen.method == "full" and chosen.noise_against == "head"
    assert chosen.noise == pytest.approx(binomial_standard_error(0.88, 872))
    assert "872 validation texts" in chosen.noise_kind


def test_without_the_pool_recorded_the_seeds_texts_are_counted():
    # results.json written before the validation split's size was recorded: five seeds of 32
    # texts are at least 160 texts, the floor of the binomial error.
    seeds = (1, 2, 3, 4, 5)
    best = MethodResult("setfit", (0.80,) * 5, 32, 5, 1.0, validation_drawn_per_seed=True, seeds=seeds)
    head = MethodResult("head", (0.70,) * 5, 32, 3, 1.0, validation_drawn_per_seed=True, seeds=seeds)
    assert recommend([best, head]).noise == pytest.approx(binomial_standard_error(0.80, 160))


def test_the_gap_is_measured_on_the_seeds_both_ran():
    # setfit leads by 0.04 on each of the three seeds both ran; its seeds 4 and 5 read easy texts
    # and lift its mean, which must not widen the gap to embed-logreg (0.09 on the means).
    best = seeded("setfit", [0.70, 0.72, 0.74, 0.90, 0.90], 5, pool=2000)
    other = seeded("embed-logreg", [0.66, 0.68, 0.70], 2, seeds=(1, 2, 3), pool=2000)
    measured = gap(best, other)
    assert measured.difference == pytest.approx(0.04)
    assert measured.error == pytest.approx(binomial_standard_error(best.accuracy, 2000))
    assert measured.within is False  # 0.04 against ±0.009
    assert recommend([best, other]).method == "setfit"


def test_repeated_or_missing_seeds_are_not_paired():
    best = seeded("setfit", [0.80, 0.82, 0.84], 5, seeds=(1, 1, 2))
    other = seeded("embed-logreg", [0.76, 0.78, 0.80], 2, seeds=(1, 2, 3))
    assert paired_differences(best, other) == []
    assert paired_differences(best, MethodResult("head", (0.7, 0.7, 0.7), 32, 3)) == []
    assert "unpaired" in gap(best, other).kind


def test_a_single_run_pairs_with_every_seed_only_on_shared_texts():
    # On the whole validation split a TF-IDF model that ran once read the texts every seed read;
    # at a learning-curve size its one run had its own seed's texts, and pairs only with that seed.
    lora = result("lora", [0.80, 0.82, 0.84], 5)
    assert paired_differences(lora, result("tfidf", [0.78], 1)) == pytest.approx([0.02, 0.04, 0.06])
    drawn = seeded("lora", [0.80, 0.82, 0.84], 5, seeds=(1, 2, 3))
    once = seeded("tfidf", [0.78], 1, seeds=(2,))
    assert paired_differences(drawn, once) == pytest.approx([0.04])
    assert gap(drawn, once).error == pytest.approx(binomial_standard_error(0.82, 32))  # one seed's texts


def test_compare_rows_are_paired_by_their_seeds():
    # Rows as compare writes them: each seed's texts are easy or hard for both methods alike.
    rows = [
        {
            "method": method,
            "train_size": "32",
            "seed": seed,
            "validation_accuracy": base + luck,
            "validation_texts": 64,
            "validation_drawn_per_seed": True,
            "validation_pool": 1000,
            "train_seconds": 1.0,
        }
        for seed, luck in zip((42, 43, 44, 45, 46), (-0.10, -0.05, 0.0, 0.05, 0.10), strict=True)
        for method, base in (("setfit", 0.80), ("embed-logreg", 0.77))
    ]
    traits = {"setfit": (4, False, False), "embed-logreg": (2, False, False)}.get
    chosen = recommend_runs(rows, traits)["32"]
    assert chosen["method"] == "setfit" and chosen["noise_against"] == "embed-logreg"
    assert chosen["noise"] == pytest.approx(binomial_standard_error(0.80, 1000))
    # Shuffled between seeds, the same figures no longer move together: within noise.
    for row, seed in zip(
        [r for r in rows if r["method"] == "embed-logreg"], (46, 45, 44, 43, 42), strict=True
    ):
        row["seed"] = seed
    assert recommend_runs(rows, traits)["32"]["within_noise"] == ["embed-logreg", "setfit"]


def test_the_reference_check_is_paired_too():
    # majority ran once on the texts every seed read. tfidf is 0.02 ahead on average but by
    # -0.02 to +0.06 seed by seed (±0.024 with the texts' error): not beyond noise ...
    majority = result("majority", [0.60], 0, texts=5000, reference=True)
    chosen = recommend([result("tfidf", [0.58, 0.62, 0.66], 1, texts=5000), majority])
    assert chosen.method == "tfidf" and "does not beat majority (0.6000) beyond noise" in chosen.reason
    # ... while 0.02 ahead on every seed is (±0.007, the texts' error alone).
    steady = recommend([result("tfidf", [0.62, 0.62, 0.62], 1, texts=5000), majority])
    assert "does not beat" not in steady.reason


def test_a_method_below_another_beyond_noise_is_passed_over():
    # full is best but swings from seed to seed, so embed-logreg is within its noise; LoRA is
    # level with full and above embed-logreg on every seed: embed-logreg is passed over for LoRA.
    seeds = (1, 2, 3)
    full = MethodResult("full", (0.84, 0.84, 0.72), 500, 6, 1.0, seeds=seeds)
    lora = MethodResult("lora", (0.80, 0.80, 0.79), 500, 5, 1.0, seeds=seeds)
    embed = MethodResult("embed-logreg", (0.77, 0.77, 0.76), 500, 2, 1.0, seeds=seeds)
    assert gap(full, embed).within and not gap(lora, embed).within
    chosen = recommend([full, lora, embed])
    assert chosen.best_method == "full" and chosen.method == "lora"
    assert chosen.within_noise == ("embed-logreg", "lora", "full")
    assert (
        "embed-logreg (0.7667) is within one standard error of full too, but lora (0.7967)" in chosen.reason
    )
    # without LoRA nothing is above embed-logreg beyond noise, but it is 3.3 points below full
    alone = recommend([full, embed])
    assert alone.within_noise == ("embed-logreg", "full") and alone.method == "full"
    assert (
        "embed-logreg (0.7667) is within one standard error of full too, but 3.3 points below" in alone.reason
    )


def test_a_cheaper_method_is_taken_only_within_a_point_of_the_best():
    # On 50 texts one standard error is 3 points: 2 points below is within noise, yet more
    # accuracy than a cheaper method may cost.
    far = recommend([result("full", [0.95], 6, texts=50), result("embed-logreg", [0.93], 2, texts=50)])
    assert far.within_noise == ("embed-logreg", "full") and far.method == "full"
    assert "2.0 points below it, more than the 1 point loralab gives up for a cheaper method" in far.reason
    near = recommend([result("full", [0.95], 6, texts=50), result("embed-logreg", [0.945], 2, texts=50)])
    assert near.method == "embed-logreg"


def few_shot_results(setfit_accuracy):
    return [
        result("head", [0.575], 3, texts=16),
        MethodResult("setfit", (setfit_accuracy,), 16, 5, 1.0, few_shot=True),
        result("embed-logreg", [0.45], 2, texts=16),
    ]


def test_with_few_texts_per_class_a_few_shot_method_within_noise_is_preferred():
    # 16 validation texts cannot tell head from setfit (±0.17): with 8 training texts per class
    # the method built for few labelled texts is taken, though head scored more and costs less.
    chosen = recommend(few_shot_results(0.525), train_per_class=8)
    assert chosen.best_method == "head" and chosen.method == "setfit" and chosen.noise_against == "setfit"
    assert "with at most 8 training texts per class validation cannot tell them apart" in chosen.reason
    assert "preferred to embed-logreg, head" not in chosen.reason  # embed-logreg is beyond noise
    assert "a method built for few labelled texts is preferred to head (" in chosen.reason
    # with more texts per class, or unknown, the cheaper best keeps it
    assert recommend(few_shot_results(0.525), train_per_class=65).method == "head"
    assert recommend(few_shot_results(0.525)).method == "head"
    # a few-shot method below the best beyond noise is not preferred
    assert recommend(few_shot_results(0.20), train_per_class=8).method == "head"
    # as the best, it keeps cheaper methods within a point of it out, and says why
    level = recommend(
        [result("head", [0.58], 3, texts=16), MethodResult("setfit", (0.585,), 16, 5, 1.0, few_shot=True)],
        train_per_class=8,
    )
    assert level.method == "setfit" and "a method built for few labelled texts is preferred" in level.reason


def test_compare_rows_say_how_many_texts_each_class_had():
    def rows(size, **extra):
        return [
            {
                "method": method,
                "train_size": size,
                "seed": seed,
                "validation_accuracy": accuracies[seed - 1],
                "validation_texts": 16,
                "validation_drawn_per_seed": size != "all",
                "validation_pool": 1000,
                "train_seconds": 1.0,
                **extra,
            }
            for seed in (1, 2, 3)
            # head 0.575 and setfit 0.55 on average, the differences swinging from seed to seed
            for method, accuracies in (("head", (0.575, 0.5, 0.65)), ("setfit", (0.55, 0.6, 0.5)))
        ]

    traits = {"head": (3, False, False), "setfit": (5, False, True)}.get
    # 8 per class from the learning-curve size, or from the recorded largest class
    assert recommend_runs(rows("8"), traits)["8"]["method"] == "setfit"
    assert recommend_runs(rows("all", train_largest_class=8), traits)["all"]["method"] == "setfit"
    # a whole split of unknown size is not taken for few-shot
    assert recommend_runs(rows("all"), traits)["all"]["method"] == "head"


def test_the_few_shot_sentence_names_what_it_was_preferred_to_and_nothing_else():
    # setfit costs more than the best (embed-logreg) and than head: the sentence must not call
    # head a cheaper method passed over for being too far below.
    chosen = recommend(
        [
            result("embed-logreg", [0.60], 2, texts=16),
            result("head", [0.57], 3, texts=16),
            MethodResult("setfit", (0.55,), 16, 5, 1.0, few_shot=True),
            result("tfidf", [0.595], 1, texts=16),
        ],
        train_per_class=8,
    )
    assert chosen.method == "setfit" and chosen.best_method == "embed-logreg"
    assert "preferred to tfidf, embed-logreg, head (" in chosen.reason
    assert "gives up for a cheaper method" not in chosen.reason
    # two few-shot methods within noise: the better on validation, and the other is not called
    # one the few-shot method was preferred to
    rival = MethodResult("setfit-lora", (0.54,), 16, 5, 1.0, few_shot=True)
    both = recommend([*few_shot_results(0.525), rival], train_per_class=8)
    assert both.method == "setfit-lora" and "preferred to head (" in both.reason
    assert "; setfit, also built for few texts, scored less on validation" in both.reason


def test_on_uneven_classes_balanced_accuracy_judges_and_its_noise_counts_the_rare_class():
    # 450 texts of one class and 50 of the other: tfidf gets 0.93 of texts right by leaning to the
    # common class, lora fewer but many more of the rare class.
    counts = {"common": 450, "rare": 50}
    rows = [
        {
            "method": method,
            "train_size": "all",
            "validation_accuracy": accuracy,
            "validation_balanced_accuracy": balanced,
            "validation_texts": 500,
            "validation_class_texts": counts,
            "train_seconds": 1.0,
        }
        for method, accuracy, balanced in (
            ("tfidf", 0.93, 0.62),
            ("lora", 0.92, 0.86),
            ("majority", 0.90, 0.5),
        )
    ]
    traits = {"majority": (0, True, False), "tfidf": (1, False, False), "lora": (5, False, False)}.get
    chosen = recommend_runs(rows, traits=traits, class_texts=counts)["all"]
    assert chosen["method"] == "lora" and chosen["judged_by"] == "balanced accuracy"
    assert chosen["validation_accuracy"] == pytest.approx(0.86)
    assert chosen["reference_validation_accuracy"] == pytest.approx(0.5)
    # The error of a balanced accuracy: sqrt(sum_c p(1-p)/n_c)/k, that of p on k²/sum(1/n_c) texts.
    assert balanced_texts(counts) == 180
    assert chosen["noise"] == pytest.approx(binomial_standard_error(0.86, 180))
    assert "as on 180 validation texts" in chosen["noise_kind"]
    assert "lora has the best validation balanced accuracy (0.8600)" in chosen["reason"]
    assert "because validation's classes are uneven (50 to 450 texts per class)" in chosen["reason"]
    assert chosen["summary"].startswith("The classes are uneven")
    # The same figures on classes that are even enough are judged by accuracy.
    even = {"common": 260, "rare": 240}
    plain = recommend_runs(
        [{**r, "validation_class_texts": even} for r in rows], traits=traits, class_texts=even
    )["all"]
    assert plain["judged_by"] == "accuracy" and plain["best_method"] == "tfidf"
    assert "balanced" not in plain["reason"] + plain["summary"]


def test_judged_by_reads_the_rarest_against_the_commonest_class():
    assert judged_by({"a": 100, "b": 50, "c": 70}) == "accuracy"  # half: still even enough
    assert judged_by({"a": 108, "b": 43, "c": 91}) == "balanced accuracy"
    assert judged_by({"a": 10}) == judged_by(None) == judged_by({"a": 10, "b": 0}) == "accuracy"


def test_compare_on_uneven_classes_shows_and_judges_balanced_accuracy(tmp_path):
    from tests.conftest import synthetic_frame

    folder = tmp_path / "uneven"
    folder.mkdir()
    for name, n, seed in (("train", 160, 1), ("validation", 80, 2), ("test", 80, 3)):
        frame = synthetic_frame(n, seed)
        rare = frame.index[frame["label"] == "positive"][n // 10 :]  # one text in ten is positive
        frame.drop(rare).to_csv(folder / f"{name}.csv", index=False)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app, ["compare", str(folder), "--methods", "majority,tfidf-nb", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["validation_judged_by"] == "balanced accuracy"
    summary = {r["method"]: r for r in saved["summary"]}
    majority = summary["majority"]
    assert majority["validation_accuracy"] == pytest.approx(40 / 48)  # always the common class
    assert majority["validation_balanced_accuracy"] == pytest.approx(0.5)
    assert saved["recommendation"]["judged_by"] == "balanced accuracy"
    assert saved["recommendation"]["reference_validation_accuracy"] == pytest.approx(0.5)
    assert "val bal. acc" in result.output
    assert CliRunner().invoke(app, ["report", str(out)]).exit_code == 0
    assert "| val bal. acc |" in (out / "report.md").read_text()
