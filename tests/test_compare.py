import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from loralab.cli import app
from loralab.config import TrainConfig
from loralab.errors import LoralabError, RunError
from loralab.runs.compare import compare
from tests.conftest import synthetic_frame

FAST = dict(epochs=1, lr=5e-3, batch_size=32)


def test_compare_writes_one_table_and_resumes(tiny_bert, synthetic_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LORALAB_CACHE_DIR", str(tmp_path / "cache"))
    config = TrainConfig(model=str(tiny_bert), **FAST)
    methods = ["tfidf-logreg", "embed-logreg", "untrained", "head", "lora"]
    out = tmp_path / "cmp"
    results = compare(str(synthetic_dir), out, methods=methods, seeds=2, base_config=config, progress=False)
    summary = {r["method"]: r for r in results["summary"]}
    assert list(summary) == methods
    assert summary["lora"]["seeds"] == 2 and summary["tfidf-logreg"]["seeds"] == 1
    assert summary["untrained"]["trainable_parameters"] == 0
    assert (out / "results.csv").exists() and json.loads((out / "results.json").read_text())["summary"]
    # A second call reuses every completed run.
    again = compare(str(synthetic_dir), out, methods=methods, seeds=2, base_config=config, progress=False)
    assert all(r["reused"] for r in again["runs"])
    # An interrupted compare (one run lost) redoes only that run.
    (out / "lora-seed43" / "manifest.json").write_text(json.dumps({"status": "interrupted"}))
    third = compare(str(synthetic_dir), out, methods=methods, seeds=2, base_config=config, progress=False)
    redone = [r["run"] for r in third["runs"] if not r["reused"]]
    assert redone == ["lora-seed43"]


def test_compare_folder_of_other_data_is_refused(tiny_bert, synthetic_dir, tmp_path):
    out = tmp_path / "cmp"
    compare(str(synthetic_dir), out, methods=["tfidf-nb"], progress=False)
    other = tmp_path / "other.csv"
    synthetic_frame(100, 5).to_csv(other, index=False)
    with pytest.raises(RunError, match="holds a comparison on other data"):
        compare(str(other), out, methods=["tfidf-nb"], progress=False)


def test_unknown_method_is_refused_before_any_work(synthetic_dir, tmp_path):
    with pytest.raises(LoralabError, match="Unknown method 'lorax'"):
        compare(str(synthetic_dir), tmp_path / "cmp", methods=["tfidf-nb", "lorax"], progress=False)
    assert not (tmp_path / "cmp").exists()


def test_compare_cli_prints_the_table(synthetic_dir, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(synthetic_dir),
            "--methods",
            "tfidf-logreg,tfidf-nb",
            "--output-dir",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tfidf-nb" in result.output and "test acc" in result.output


def test_report_tables_match_results_and_images_are_embedded(synthetic_dir, tmp_path, tiny_bert):
    import re

    config = TrainConfig(model=str(tiny_bert), **FAST)
    out = tmp_path / "cmp"
    results = compare(
        str(synthetic_dir), out, methods=["tfidf-logreg", "head"], base_config=config, progress=False
    )
    result = CliRunner().invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    markdown = (out / "report.md").read_text()
    for row in results["summary"]:
        assert f"{row['test_accuracy']:.4f}" in page and f"{row['test_accuracy']:.4f}" in markdown
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 4  # two scatter plots, training curves, confusion matrices
    assert "http" not in page.split("<body>")[1].replace("https://", "")  # nothing fetched from elsewhere
    assert "training_curves.png" in markdown and (out / "training_curves.png").exists()


def test_report_of_a_single_run(synthetic_dir, tmp_path, tiny_bert):
    from loralab.reports.report import write_report
    from loralab.runs.train import train_run

    run = train_run(
        synthetic_dir,
        TrainConfig(model=str(tiny_bert), method="head", **FAST),
        tmp_path / "r",
        progress=False,
    )
    html_path, _ = write_report(run.folder)
    assert "confusion matrix of r" in html_path.read_text()


def test_report_of_a_folder_that_is_neither(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "neither a run folder" in result.output


def test_learning_curve_uses_nested_subsets_and_is_plotted(synthetic_dir, tmp_path):
    from loralab.data import load_data
    from loralab.runs.compare import per_class_subset

    splits = load_data(synthetic_dir)
    small, large = per_class_subset(splits, 4, 42), per_class_subset(splits, 16, 42)
    assert small.train.label_counts() == {"negative": 4, "positive": 4}
    assert set(small.train.texts) <= set(large.train.texts) and small.test == splits.test
    out = tmp_path / "lc"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(synthetic_dir),
            "--methods",
            "tfidf-logreg,tfidf-nb",
            "--train-sizes",
            "4,16,all",
            "--output-dir",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert [(r["train_size"], r["method"]) for r in summary][:2] == [("4", "tfidf-logreg"), ("4", "tfidf-nb")]
    assert len(summary) == 6
    assert CliRunner().invoke(app, ["report", str(out)]).exit_code == 0
    assert (out / "learning_curves.png").exists()


def test_train_sizes_larger_than_the_data_say_what_exists(synthetic_dir, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(synthetic_dir),
            "--methods",
            "tfidf-nb",
            "--train-sizes",
            "500",
            "--output-dir",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 2
    assert "more than the training data has (negative 80, positive 80)" in " ".join(result.output.split())


def test_multiclass_compare_with_another_label_column(tmp_path):
    path = tmp_path / "tones.csv"
    synthetic_frame(240, 4, classes=3).rename(columns={"label": "tone"}).to_csv(path, index=False)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(path),
            "--label-col",
            "tone",
            "--methods",
            "tfidf-logreg,tfidf-nb",
            "--output-dir",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "tfidf-nb" / "metrics.json").read_text())
    assert metrics["test"]["average"] == "macro" and set(metrics["test"]["per_class"]) == {
        "negative",
        "neutral",
        "positive",
    }


def test_predict_on_a_compare_folder_names_its_runs(synthetic_dir, tmp_path):
    out = tmp_path / "cmp"
    compare(str(synthetic_dir), out, methods=["tfidf-nb"], progress=False)
    result = CliRunner().invoke(app, ["predict", str(out), "good"])
    assert (
        result.exit_code == 2
        and "is a compare folder, not a run; pass one of its runs (tfidf-nb)" in result.output
    )


def test_model_files_of_another_kind_are_refused(synthetic_dir, tmp_path):
    from loralab.runs.train import load_run, train_run

    run = train_run(synthetic_dir, TrainConfig(method="tfidf-nb"), tmp_path / "r", progress=False)
    info_path = run.folder / "model" / "loralab.json"
    info = json.loads(info_path.read_text())
    info["method"] = "embed-logreg"
    info_path.write_text(json.dumps(info))
    with pytest.raises(RunError, match="loralab.json: has .* bytes where the run saved"):
        load_run(run.folder)
    _forget_model_file_sizes(run.folder)  # as a run saved before they were recorded
    with pytest.raises(RunError, match="the saved linear model .* is missing"):
        load_run(run.folder)


def _forget_model_file_sizes(run_dir):
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["model_files"]
    manifest_path.write_text(json.dumps(manifest))


def test_compare_repeats_every_seeded_method_per_seed(tiny_bert, synthetic_dir, tmp_path):
    # lora-scratch was once left out of the seeded methods and trained only once.
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(synthetic_dir),
            "--methods",
            "lora-scratch,tfidf-nb",
            "--seeds",
            "3",
            "--model",
            str(tiny_bert),
            "--output-dir",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert sorted(r["run"] for r in runs) == [
        "lora-scratch-seed42",
        "lora-scratch-seed43",
        "lora-scratch-seed44",
        "tfidf-nb",
    ]
    summary = {r["method"]: r for r in json.loads((out / "results.json").read_text())["summary"]}
    assert summary["lora-scratch"]["seeds"] == 3 and summary["tfidf-nb"]["seeds"] == 1


def test_run_plan_follows_the_seeded_trait_of_every_method():
    from loralab.methods import get_method, method_names
    from loralab.runs.compare import run_plan

    for name in method_names():
        plan = run_plan([name], seeds=2, first_seed=7, sizes=[None, 8])
        # On the whole training split only seeded methods repeat; on a learning curve's subsets
        # each seed draws its own subset, so every method runs once per seed.
        expected_seeds = [7, 8] if get_method(name).seeded else [7]
        assert [p.seed for p in plan] == expected_seeds + [7, 8], name
        assert len({(p.train_size, p.folder_name) for p in plan}) == len(plan), name
    # Whatever trains in epochs has seed-dependent figures.
    assert all(get_method(n).seeded for n in method_names() if get_method(n).trains_in_epochs)


def test_each_seed_of_a_learning_curve_draws_its_own_nested_subsets(synthetic_dir):
    from loralab.data import load_data
    from loralab.runs.compare import per_class_subset, subset_seeds

    splits = load_data(synthetic_dir)
    first, second = subset_seeds(42, 2)
    for seed in (first, second):
        small, large = per_class_subset(splits, 4, seed), per_class_subset(splits, 16, seed)
        assert set(small.train.texts) <= set(large.train.texts)
    assert set(per_class_subset(splits, 16, first).train.texts) != set(
        per_class_subset(splits, 16, second).train.texts
    )


def test_a_learning_curve_folder_with_shared_subsets_is_not_reused(tmp_path, synthetic_dir):
    from loralab.runs.compare import COMPARE_FILE

    out = tmp_path / "cmp"
    compare(str(synthetic_dir), out, methods=["majority"], train_sizes=[8], progress=False)
    stored = json.loads((out / COMPARE_FILE).read_text())
    del stored["subsets"]  # as a folder written before subsets were drawn per seed
    (out / COMPARE_FILE).write_text(json.dumps(stored))
    with pytest.raises(RunError, match="subsets were shared by every seed"):
        compare(str(synthetic_dir), out, methods=["majority"], train_sizes=[8], progress=False)


def test_a_stopped_compare_goes_on_from_the_interrupted_runs_checkpoint(tiny_bert, synthetic_dir, tmp_path):
    config = TrainConfig(model=str(tiny_bert), epochs=2, lr=5e-3, batch_size=32)
    whole = compare(str(synthetic_dir), tmp_path / "whole", methods=["lora"], base_config=config,
                    progress=False)  # fmt: skip

    class Stop(KeyboardInterrupt):  # how the page cancels a comparison after an epoch
        pass

    def stop_after_the_first_epoch(row):
        raise Stop()

    out = tmp_path / "cmp"
    with pytest.raises(Stop):
        compare(str(synthetic_dir), out, methods=["lora"], base_config=config, progress=False,
                on_epoch=stop_after_the_first_epoch)  # fmt: skip
    assert json.loads((out / "lora-seed42" / "manifest.json").read_text())["status"] == "interrupted"
    epochs_seen = []
    again = compare(str(synthetic_dir), out, methods=["lora"], base_config=config, progress=False,
                    on_epoch=epochs_seen.append)  # fmt: skip
    manifest = json.loads((out / "lora-seed42" / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["resumed"] is True
    assert [row["epoch"] for row in epochs_seen] == [1, 2]  # the first replayed from the checkpoint
    assert again["runs"][0]["test_accuracy"] == pytest.approx(whole["runs"][0]["test_accuracy"], abs=1e-6)
    # The second epoch trained on from the first one's weights: the losses of an unbroken run.
    history, reference = (pd.read_csv(d / "lora-seed42" / "history.csv") for d in (out, tmp_path / "whole"))
    pd.testing.assert_frame_equal(history[["train_loss", "val_loss"]], reference[["train_loss", "val_loss"]],
                                  atol=1e-5, rtol=0)  # fmt: skip


def test_a_typo_in_the_target_modules_fails_before_any_method_trains(tiny_bert, synthetic_dir, tmp_path):
    common = [str(synthetic_dir), "--model", str(tiny_bert), "--epochs", "1", "--threads", "1"]
    typo = ["--target-modules", "qurey,value"]
    train = CliRunner().invoke(app, ["train", *common, "--method", "lora", *typo, "-o", str(tmp_path / "r")])
    assert train.exit_code == 2
    said = next(line for line in train.output.splitlines() if "qurey" in line).removeprefix("error: ")
    out = tmp_path / "cmp"
    methods = ["--methods", "majority,tfidf-logreg,head,lora"]
    result = CliRunner().invoke(app, ["compare", *common, *methods, *typo, "-o", str(out)])
    assert result.exit_code == 2
    assert said in result.output  # the sentence train gives, before tfidf-logreg or head has trained
    assert "(done)" not in result.output and not out.exists()


def test_settings_that_some_compared_methods_ignore_are_named(synthetic_dir, tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", str(synthetic_dir), "--methods", "majority,tfidf-logreg", "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--baseline-c", "0.5", "--lora-rank", "4"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "--baseline-c applies to tfidf-logreg only; majority ignores it." in text
    assert "--lora-rank applies to none of the methods compared (majority, tfidf-logreg); ignored." in text
    # The runs ask only for what they read: a run of another --lora-rank is the same run.
    assert json.loads((out / "tfidf-logreg" / "config.json").read_text())["baseline_c"] == 0.5
    again = CliRunner().invoke(app, [*args, "--baseline-c", "0.5"])
    assert again.exit_code == 0 and again.output.count("(reused)") == 2 and "--lora-rank" not in again.output
    from loralab.methods import get_method
    from loralab.runs.compare import run_config, unread_settings_warnings

    embed = ["embed-logreg", "embed-ridge"]
    assert unread_settings_warnings(TrainConfig(baseline_c=0.5), embed) == [
        "--baseline-c applies to embed-logreg only; embed-ridge ignores it."
    ]
    # --lora-layers, which train refuses for full fine-tuning, is for the LoRA runs of a comparison.
    full = run_config(TrainConfig(lora_layers=1, baseline_c=0.5), "full", 42)
    assert full.lora_layers is None and full.baseline_c is None
    get_method("full").check(full)


def test_train_says_which_given_settings_its_method_ignores(synthetic_dir, tmp_path):
    config = TrainConfig(method="majority", baseline_c=0.5, lora_rank=4)
    from loralab.runs.train import train_run

    with pytest.warns(UserWarning, match=r"^--lora-rank, --baseline-c are not read by --method majority"):
        train_run(synthetic_dir, config, tmp_path / "r", progress=False)


def test_one_epoch_is_not_said_to_be_chosen_on_validation(tiny_bert, synthetic_dir, tmp_path):
    from loralab.runs.recommend import CROSSFIT_MARK, CROSSFIT_NOTE

    out = tmp_path / "cmp"
    args = ["compare", str(synthetic_dir), "--methods", "tfidf-logreg,head", "--model", str(tiny_bert)]
    result = CliRunner().invoke(app, [*args, "--epochs", "1", "--threads", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert CROSSFIT_MARK not in result.output and CROSSFIT_NOTE not in " ".join(result.output.split())
    saved = json.loads((out / "results.json").read_text())
    assert "chose an epoch on validation" not in saved["recommendation"]["reason"]
    head = next(r for r in saved["summary"] if r["method"] == "head")
    assert head["validation_crossfit"] is False
    # Still recorded as before (the plain accuracy of the one epoch), with the epochs it had.
    run = next(r for r in saved["runs"] if r["method"] == "head")
    assert run["validation_accuracy_crossfit"] is not None and run["epochs"] == 1
    assert CliRunner().invoke(app, ["report", str(out)]).exit_code == 0
    report = (out / "report.md").read_text()
    assert CROSSFIT_NOTE not in report and CROSSFIT_MARK not in report
