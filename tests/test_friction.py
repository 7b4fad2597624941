"""First-run friction: --label-map, progress lines outside a terminal, predict to stdout."""

import json

import pytest
from typer.testing import CliRunner

from loralab.cli import app
from loralab.data.label_map import parse_label_map, relabel_splits
from loralab.errors import DataError
from loralab.runs.compare import compare
from tests.conftest import synthetic_frame

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("friction")
    data = root / "data.csv"
    synthetic_frame(200, 1).to_csv(data, index=False)
    out = root / "run"
    result = invoke("train", data, "--method", "tfidf-logreg", "--output-dir", out)
    assert result.exit_code == 0, result.output
    return out


def fresh_rotten(tmp_path, n=40):
    path = tmp_path / "fresh.csv"
    frame = synthetic_frame(n, 11)
    frame["label"] = frame["label"].map({"positive": "fresh", "negative": "rotten"})
    frame.to_csv(path, index=False)
    return path


def test_parse_label_map():
    assert parse_label_map("a=x, b = y,") == {"a": "x", "b": "y"}
    assert parse_label_map(None) == {}
    for bad in ("a", "a=", "=x", "a=x,a=y"):
        with pytest.raises(DataError, match="--label-map"):
            parse_label_map(bad)


def test_evaluate_with_a_label_map_and_progress_lines(tfidf_run, tmp_path):
    data = fresh_rotten(tmp_path)
    refused = invoke("evaluate", tfidf_run, data)
    assert refused.exit_code == 2 and "--label-map" in refused.output
    result = invoke(
        "evaluate",
        tfidf_run,
        data,
        "--label-map",
        "fresh=positive,rotten=negative",
        "--output",
        tmp_path / "m.json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m.json").read_text())["trained"]["n"] == 40
    # CliRunner is not a terminal: the stages are still reported, line by line.
    for line in ("Loading ", "Evaluating the trained model on 40 texts", "Done in "):
        assert line in result.output


def test_label_map_naming_an_absent_label_is_one_clear_error(tfidf_run, tmp_path):
    result = invoke("evaluate", tfidf_run, fresh_rotten(tmp_path), "--label-map", "good=positive")
    assert result.exit_code == 2
    assert "renames 'good', which the labels do not hold; they are 'fresh', 'rotten'" in result.output


def test_compare_with_a_label_map_merges_labels(tmp_path):
    data = tmp_path / "three.csv"
    synthetic_frame(150, 1, classes=3).to_csv(data, index=False)
    results = compare(
        str(data),
        tmp_path / "cmp",
        methods=["tfidf-nb"],
        progress=False,
        label_map={"neutral": "not-negative", "positive": "not-negative"},
    )
    run = json.loads((tmp_path / "cmp" / results["runs"][0]["run"] / "manifest.json").read_text())
    assert run["data"]["labels"] == ["negative", "not-negative"]
    assert any("--label-map" in note for note in run["data"]["notes"])


def test_relabel_splits_refuses_to_leave_one_class(synthetic_dir):
    from loralab.data import load_data

    splits = load_data(synthetic_dir)
    with pytest.raises(DataError, match="single label"):
        relabel_splits(splits, {"positive": "x", "negative": "x"})


def test_predict_input_without_output_writes_csv_to_stdout(tfidf_run, tmp_path):
    import io

    import pandas as pd

    from loralab.runs.train import load_run

    source = tmp_path / "in.jsonl"
    frame = synthetic_frame(25, 5)
    frame.to_json(source, orient="records", lines=True)
    result = invoke("predict", tfidf_run, "--input", source, "--chunk-size", 10)
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(io.StringIO(result.stdout))
    assert len(scored) == 25 and list(scored.columns[:3]) == ["text", "label", "predicted"]
    assert scored["predicted"].tolist() == load_run(tfidf_run).predict(frame["text"].tolist())
    # The loading message goes to stderr, so stdout stays a clean CSV.
    assert "Loading" in result.stderr and "Loading" not in result.stdout


def test_predict_says_it_is_loading(tfidf_run):
    result = invoke("predict", tfidf_run, "a good film")
    assert result.exit_code == 0, result.output
    assert "Loading" in result.stderr and "Loaded tfidf-logreg model in" in result.stderr
    assert invoke("predict", tfidf_run, "--output", "x.csv", "text").exit_code == 2


def test_evaluating_on_the_training_file_scores_the_split_training_carved(tfidf_run, tmp_path):
    data = tfidf_run.parent / "data.csv"  # the single file the run was trained on
    metrics = json.loads((tfidf_run / "metrics.json").read_text())
    for split in ("test", "validation"):
        result = invoke("evaluate", tfidf_run, data, "--split", split, "--output", tmp_path / f"{split}.json")
        assert result.exit_code == 0, result.output
        scored = json.loads((tmp_path / f"{split}.json").read_text())["trained"]
        assert scored["n"] == 20 and scored["accuracy"] == metrics[split]["accuracy"]
        assert "is the file this run was trained on" in " ".join(result.output.split())
    # A compare run of seed 43 trains on splits carved with the comparison's seed, 42: the
    # carve follows the seed recorded with the data, not the run's own.
    config = json.loads((tfidf_run / "config.json").read_text())
    (tfidf_run / "config.json").write_text(json.dumps({**config, "seed": 43}))
    try:
        result = invoke("evaluate", tfidf_run, data, "--output", tmp_path / "seed.json")
        scored = json.loads((tmp_path / "seed.json").read_text())["trained"]
        assert scored["n"] == 20 and scored["accuracy"] == metrics["test"]["accuracy"]
    finally:
        (tfidf_run / "config.json").write_text(json.dumps(config))
    refused = invoke("evaluate", tfidf_run, data, "--split", "foo")
    assert refused.exit_code == 2
    assert "Unknown split 'foo'; use one of train, validation, test." in refused.output
    other = tmp_path / "data.csv"  # the same name, other rows: scored whole
    synthetic_frame(30, 5).to_csv(other, index=False)
    result = invoke("evaluate", tfidf_run, other, "--output", tmp_path / "other.json")
    assert json.loads((tmp_path / "other.json").read_text())["trained"]["n"] == 30


def test_evaluating_a_split_of_another_single_file_says_the_whole_file_is_scored(tfidf_run, tmp_path):
    other = tmp_path / "reviews.csv"
    synthetic_frame(30, 5).to_csv(other, index=False)
    result = invoke("evaluate", tfidf_run, other, "--split", "validation", "--output", tmp_path / "v.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "v.json").read_text())["trained"]["n"] == 30
    message = " ".join(result.output.split())
    assert f"{other} is a single file, so all 30 of its rows are scored, not a validation split" in message
    # a file given to test on, the default split, is the test data: nothing to say
    result = invoke("evaluate", tfidf_run, other, "--output", tmp_path / "t.json")
    assert result.exit_code == 0 and "single file" not in result.output


def test_threads_hold_from_the_start_of_a_run_and_the_manifest_says_so(tmp_path):
    import torch

    data = tmp_path / "data.csv"
    synthetic_frame(60, 2).to_csv(data, index=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        result = invoke("train", data, "--method", "tfidf-logreg", "--threads", 1, "-o", tmp_path / "run")
        assert result.exit_code == 0, result.output
        assert json.loads((tmp_path / "run" / "manifest.json").read_text())["torch_threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_a_runs_config_json_reruns_it_with_its_columns_and_subset(tmp_path):
    data = tmp_path / "tweets.csv"
    synthetic_frame(120, 3).rename(columns={"text": "tweet", "label": "stance"}).to_csv(data, index=False)
    first = tmp_path / "first"
    args = ("--method", "tfidf-logreg", "--text-col", "tweet", "--label-col", "stance", "--subset", 40)
    assert invoke("train", data, *args, "-o", first).exit_code == 0
    again = invoke("train", data, "--config", first / "config.json", "-o", tmp_path / "again")
    assert again.exit_code == 0, again.output
    manifests = [json.loads((tmp_path / r / "manifest.json").read_text()) for r in ("first", "again")]
    assert [m["columns"] for m in manifests] == [{"text": "tweet", "label": "stance"}] * 2
    assert [m["data"]["splits"] for m in manifests[1:]] == [manifests[0]["data"]["splits"]]
    compared = tmp_path / "cmp"
    compare(str(data), compared, methods=["tfidf-nb"], text_col="tweet", label_col="stance", subset=40)
    manifest = json.loads((compared / "tfidf-nb" / "manifest.json").read_text())
    assert manifest["columns"] == {"text": "tweet", "label": "stance"} and manifest["subset"] == 40
    metrics = [json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("first", "again")]
    assert metrics[0]["test"]["accuracy"] == metrics[1]["test"]["accuracy"]
    assert metrics[0]["test"]["n"] == metrics[1]["test"]["n"]
