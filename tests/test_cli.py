"""The command line through Typer's runner: each command, and each bad input's one sentence."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from loralab.cli import app
from tests.conftest import synthetic_frame

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_bert):
    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    data.mkdir()
    synthetic_frame(120, 1).to_csv(data / "train.csv", index=False)
    synthetic_frame(30, 2).to_csv(data / "validation.csv", index=False)
    synthetic_frame(30, 3).to_csv(data / "test.csv", index=False)
    out = root / "run"
    result = invoke(
        "train",
        data,
        "--method",
        "lora",
        "--model",
        tiny_bert,
        "--epochs",
        2,
        "--lr",
        5e-3,
        "--output-dir",
        out,
        "--lora-rank",
        4,
    )
    assert result.exit_code == 0, result.output
    assert "Metrics" in result.output and "Trainable parameters" in result.output
    return out, data


def test_train_writes_a_run(trained_run):
    out, _ = trained_run
    assert json.loads((out / "manifest.json").read_text())["status"] == "completed"
    assert json.loads((out / "config.json").read_text())["lora_rank"] == 4


def test_predict_texts(trained_run):
    out, _ = trained_run
    result = invoke("predict", out, "a good film", "a dull plot")
    assert result.exit_code == 0, result.output
    assert "probability" in result.output and ("positive" in result.output or "negative" in result.output)


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_predict_file_streams_in_chunks(trained_run, tmp_path, suffix):
    from loralab.runs.train import load_run

    out, data = trained_run
    frame = synthetic_frame(45, 9).rename(columns={"text": "review"})
    source = tmp_path / f"in.{suffix}"
    {
        "csv": lambda: frame.to_csv(source, index=False),
        "jsonl": lambda: frame.to_json(source, orient="records", lines=True),
        "parquet": lambda: frame.to_parquet(source),
    }[suffix]()
    target = tmp_path / f"out.{suffix}"
    result = invoke(
        "predict", out, "--input", source, "--output", target, "--text-col", "review", "--chunk-size", 10
    )
    assert result.exit_code == 0, result.output
    scored = {"csv": pd.read_csv, "jsonl": lambda p: pd.read_json(p, lines=True), "parquet": pd.read_parquet}[
        suffix
    ](target)
    assert len(scored) == 45 and list(scored.columns[:2]) == ["review", "label"]
    expected = load_run(out).predict(frame["review"].tolist())
    assert scored["predicted"].tolist() == expected


def test_evaluate_on_other_data_and_before_after(trained_run, tmp_path):
    out, data = trained_run
    other = tmp_path / "other.csv"
    synthetic_frame(40, 11).to_csv(other, index=False)
    result = invoke("evaluate", out, other, "--before", "--output", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert set(metrics) == {"before", "after"} and metrics["after"]["n"] == 40


def test_data_inspect(synthetic_dir, tiny_bert):
    result = invoke("data", "inspect", synthetic_dir, "--model", tiny_bert, "--max-length", 8)
    assert result.exit_code == 0, result.output
    assert "160" in result.output and "Token lengths" in result.output and "truncated" in result.output


def test_data_inspect_checks_and_caps_max_length_as_train_does(synthetic_dir, tiny_bert):
    assert "--max-length must be at least 8, got 0" in _error(
        invoke("data", "inspect", synthetic_dir, "--model", tiny_bert, "--max-length", 0)
    )
    result = invoke("data", "inspect", synthetic_dir, "--model", tiny_bert, "--max-length", 100_000)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "is more than model" in text and "> 64 (truncated)" in text  # the model's 64 positions


def test_model_inspect(tiny_bert):
    result = invoke("model", "inspect", "--model", tiny_bert, "--text", "a good film")
    assert result.exit_code == 0, result.output
    for fragment in ("Parameters", "[CLS]", "(1, 5, 32)", "query", "lora"):
        assert fragment in result.output


# --- bad input: exit code 2, one sentence, nothing half-written -------------------------


def _error(result):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def test_missing_data_file(tmp_path):
    assert "no such file or folder" in _error(invoke("train", tmp_path / "nope.csv"))


def test_missing_column_lists_columns(synthetic_dir, tiny_bert):
    message = _error(invoke("train", synthetic_dir, "--model", tiny_bert, "--text-col", "review"))
    assert "no text column 'review'; the columns are text, label" in message


def test_unknown_method_lists_methods(synthetic_dir):
    message = _error(invoke("train", synthetic_dir, "--method", "loar"))
    assert "Unknown method 'loar' (did you mean 'lora'?)" in message and "full" in message


@pytest.mark.parametrize("methods", ["", " , "])
def test_compare_with_no_method_named_is_refused_not_the_whole_ladder(synthetic_dir, tmp_path, methods):
    result = invoke("compare", synthetic_dir, "--methods", methods, "--output-dir", tmp_path / "c")
    assert "--methods names no method" in _error(result) and not (tmp_path / "c").exists()


def test_a_training_jobs_config_gives_its_method_way_to_compares_methods(synthetic_dir, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("method: lora\nlr: 0.001\n")
    out = tmp_path / "c"
    result = invoke("compare", synthetic_dir, "--config", job, "--methods", "majority", "--output-dir", out)
    assert result.exit_code == 0, result.output
    assert "method: lora is left out; compare trains --methods." in " ".join(result.output.split())
    assert "choose them with --methods" in _error(invoke("compare", synthetic_dir, "--config", job))


def test_evaluate_output_must_be_json(synthetic_dir, tmp_path):
    message = _error(invoke("evaluate", tmp_path, synthetic_dir, "--output", tmp_path / "m.csv"))
    assert "the metrics are written as JSON; name the file *.json" in message


def test_rank_zero(synthetic_dir):
    assert "--lora-rank must be a positive integer" in _error(
        invoke("train", synthetic_dir, "--lora-rank", 0)
    )


def test_rank_larger_than_layer_leaves_nothing(synthetic_dir, tiny_bert, tmp_path):
    out = tmp_path / "r"
    message = _error(
        invoke("train", synthetic_dir, "--model", tiny_bert, "--lora-rank", 64, "--output-dir", out)
    )
    assert "larger than layer" in message and not out.exists()


def test_target_modules_that_match_nothing(synthetic_dir, tiny_bert, tmp_path):
    out = tmp_path / "r"
    message = _error(
        invoke("train", synthetic_dir, "--model", tiny_bert, "--target-modules", "q_lin", "--output-dir", out)
    )
    assert "'q_lin' matches no linear layer" in message and not out.exists()


def test_model_that_cannot_be_loaded_offline(synthetic_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = _error(invoke("train", synthetic_dir, "--model", "no-such-org/no-model-xyz"))
    assert "cannot be loaded" in message


def test_existing_run_is_refused(trained_run, tiny_bert):
    out, data = trained_run
    message = _error(invoke("train", data, "--model", tiny_bert, "--output-dir", out))
    assert "already holds a run" in message and "--overwrite" in message


def test_unseen_labels_in_evaluation_data(trained_run, tmp_path):
    out, _ = trained_run
    path = tmp_path / "three.csv"
    synthetic_frame(30, classes=3).to_csv(path, index=False)
    message = _error(invoke("evaluate", out, path))
    assert "'neutral' were never seen by this model" in message
    # Which name means which cannot be guessed: the example leaves it to the user.
    assert "--label-map 'neutral=NAME', each NAME one of the model's labels" in message


def test_labels_in_another_case_are_paired_in_the_label_map_example():
    from loralab.data.dataset import LabelledTexts
    from loralab.errors import DataError
    from loralab.runs.evaluate import check_labels

    with pytest.raises(DataError, match="--label-map 'Negative=negative,Positive=positive'\\.$"):
        check_labels(LabelledTexts(["a", "b"], ["Positive", "Negative"]), ["negative", "positive"], "f.csv")


def test_predict_on_a_folder_that_is_not_a_run(tmp_path):
    assert "not a loralab run folder" in _error(invoke("predict", tmp_path, "text"))
    assert f"{tmp_path / 'nope'}: no such run folder." in _error(invoke("predict", tmp_path / "nope", "x"))


def test_single_class_training_data(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x"] * 4}).to_csv(path, index=False)
    assert "single class" in _error(invoke("train", path))


def test_unknown_key_in_config_file(tmp_path, synthetic_dir):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"lora_rnak": 4}))
    assert "lora_rnak" in _error(invoke("train", synthetic_dir, "--config", path))


def test_baseline_through_the_cli(synthetic_dir, tmp_path):
    out = tmp_path / "tfidf"
    result = invoke(
        "train", synthetic_dir, "--method", "tfidf-nb", "--tfidf-ngram-max", 1, "--output-dir", out
    )
    assert result.exit_code == 0, result.output
    result = invoke("predict", out, "good good good")
    assert result.exit_code == 0 and "positive" in result.output


def test_predict_with_the_onnx_backend(trained_run):
    out, _ = trained_run
    torch_run = invoke("predict", out, "a good film", "a dull plot")
    onnx_run = invoke("predict", out, "a good film", "a dull plot", "--backend", "onnx")
    assert onnx_run.exit_code == 0, onnx_run.output
    labels = [line.split()[-2] for line in torch_run.output.splitlines() if "film" in line or "plot" in line]
    assert labels and labels == [
        line.split()[-2] for line in onnx_run.output.splitlines() if "film" in line or "plot" in line
    ]
    assert "--int8 goes with --backend onnx" in _error(invoke("predict", out, "x", "--int8"))
    assert "--backend must be torch or onnx, got 'tpu'" in _error(
        invoke("predict", out, "x", "--backend", "tpu")
    )


def test_onnx_backend_without_its_extra_names_the_extra(trained_run, monkeypatch):
    import importlib.util

    out, _ = trained_run
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else find_spec(name, *a)
    )
    message = _error(invoke("predict", out, "x", "--backend", "onnx"))
    assert "needs onnxscript, which is not installed; run: pip install 'loralab[onnx]'" in message


def test_lora_layers_beyond_the_depth_is_one_sentence(tiny_bert, synthetic_dir, tmp_path):
    message = _error(
        invoke(
            "train", synthetic_dir, "--model", tiny_bert, "--lora-layers", 5, "--output-dir", tmp_path / "r"
        )
    )
    assert "--lora-layers 5 is more than this model's depth: it has 2 encoder layers" in message
    assert not (tmp_path / "r").exists()


def test_metrics_table_shows_macro_f1_once_for_three_classes():
    from rich.console import Console

    from loralab.cli.common import metrics_table
    from loralab.evaluation.metrics import classification_metrics

    def rendered(labels):
        metrics = classification_metrics(labels, labels[::-1], sorted(set(labels))).to_dict()
        console = Console(width=200, record=True)
        console.print(metrics_table({"test": metrics}))
        return console.export_text()

    three = rendered(["a", "b", "c", "a"])
    # with three classes the headline F1 is the macro average: one row, not two equal ones
    assert three.count("F1") == 1 and "F1 (macro)" in three
    two = rendered(["neg", "pos", "pos", "neg", "pos"])
    assert "F1 (positive class 'pos')" in two and "macro-F1" in two  # two different numbers


def test_train_refuses_a_score_column_before_writing_a_run(tmp_path):
    data = tmp_path / "reviews.csv"
    frame = synthetic_frame(100, 4)
    frame.assign(score=[f"{(i * 37 % 97 + 1) / 100:.2f}" for i in range(100)]).to_csv(data, index=False)
    result = invoke("train", data, "--label-col", "score", "--method", "tfidf-logreg", "-o", tmp_path / "r")
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = " ".join(result.output.split())
    assert "column 'score' looks like a continuous score (97 distinct values among 100 texts" in message
    assert "(the other columns are label)" in message
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def tweet_run(tmp_path_factory):
    """A TF-IDF run trained on the columns tweet and sentiment (fast: no transformer)."""
    root = tmp_path_factory.mktemp("tweets")
    frame = synthetic_frame(120, 4).rename(columns={"text": "tweet", "label": "sentiment"})
    frame.to_csv(root / "tweets.csv", index=False)
    out = root / "run"
    columns = ("--text-col", "tweet", "--label-col", "sentiment")
    result = invoke("train", root / "tweets.csv", "--method", "tfidf-logreg", *columns, "--output-dir", out)
    assert result.exit_code == 0, result.output
    return out, frame


@pytest.fixture
def no_loading(monkeypatch):
    """Fail any test that loads a model; the calls are recorded."""
    import loralab.runs.evaluate
    import loralab.runs.predict

    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(loralab.runs.predict, "load_for_prediction", refuse)
    monkeypatch.setattr(loralab.runs.evaluate, "load_run", refuse)
    return calls


@pytest.mark.parametrize("output", [True, False], ids=["to a file", "to stdout"])
def test_predict_refuses_a_missing_column_before_loading_the_model(tweet_run, tmp_path, no_loading, output):
    out, frame = tweet_run
    source = tmp_path / "in.csv"
    frame.rename(columns={"tweet": "body"}).to_csv(source, index=False)
    target = tmp_path / "scored.csv"
    result = invoke("predict", out, "--input", source, *(["--output", target] if output else []))
    expected = f"{source}: no text column 'text'; the columns are body, sentiment (choose one with"
    assert expected in _error(result)
    assert "Loading" not in result.output and no_loading == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
    misspelt = _error(invoke("predict", out, "--input", source, "--text-col", "bdoy", "--output", target))
    assert "no text column 'bdoy'; the columns are body, sentiment" in misspelt and no_loading == []


def test_predict_refuses_an_output_it_cannot_write_before_loading_the_model(tweet_run, tmp_path, no_loading):
    out, frame = tweet_run
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    taken = tmp_path / "taken.csv"
    taken.write_text("keep me\n")
    assert f"{taken}: already exists; choose another --output or pass --overwrite." in _error(
        invoke("predict", out, "--input", source, "--output", taken)
    )
    assert taken.read_text() == "keep me\n"
    under_a_file = taken / "scores" / "out.csv"
    assert f"{under_a_file}: a part of the path is a file, not a folder." in _error(
        invoke("predict", out, "--input", source, "--output", under_a_file)
    )
    assert "unsupported file type" in _error(
        invoke("predict", out, "--input", source, "--output", tmp_path / "o.xlsx")
    )
    assert no_loading == []


def test_evaluate_checks_its_data_and_output_before_loading_the_model(tweet_run, tmp_path, no_loading):
    out, frame = tweet_run
    source = tmp_path / "other.csv"
    frame.to_csv(source, index=False)
    assert f"{source}: no label column 'stars'; the columns are tweet, sentiment" in _error(
        invoke("evaluate", out, source, "--text-col", "tweet", "--label-col", "stars")
    )
    frame.assign(sentiment=frame["sentiment"].str.upper()).to_csv(source, index=False)
    columns = ("--text-col", "tweet", "--label-col", "sentiment")
    assert "were never seen by this model" in _error(invoke("evaluate", out, source, *columns))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert f"{blocker / 'm.json'}: a part of the path is a file, not a folder." in _error(
        invoke("evaluate", out, source, "--output", blocker / "m.json")
    )
    assert no_loading == []


def test_a_run_trained_on_other_columns_reads_them_by_default(tweet_run, tmp_path):
    from loralab.runs.train import load_run

    out, frame = tweet_run
    source = tmp_path / "in.csv"
    frame[["tweet"]].assign(id=range(len(frame))).to_csv(source, index=False)
    target = tmp_path / "scored.csv"
    result = invoke("predict", out, "--input", source, "--output", target)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "Texts read from column 'tweet', the run's text column (--text-col chooses another)." in said
    scored = pd.read_csv(target)
    assert scored["predicted"].tolist() == load_run(out).predict(frame["tweet"].tolist())
    streamed = invoke("predict", out, "--input", source)
    assert streamed.exit_code == 0 and "the run's text column" in streamed.output
    # A file without the run's column is read from the usual one, without a note.
    frame.rename(columns={"tweet": "text"}).to_csv(source, index=False)
    result = invoke("predict", out, "--input", source, "--output", target, "--overwrite")
    assert result.exit_code == 0, result.output
    assert "the run's text column" not in result.output
    evaluated = invoke("evaluate", out, source, "--label-col", "sentiment")
    assert evaluated.exit_code == 0, evaluated.output
    assert "Texts read from" not in evaluated.output


def test_evaluate_reads_the_runs_columns_by_default(tweet_run, tmp_path):
    out, frame = tweet_run
    source = tmp_path / "other.csv"
    frame.to_csv(source, index=False)
    result = invoke("evaluate", out, source, "--output", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "Texts read from column 'tweet', the run's text column" in said
    assert "Labels read from column 'sentiment', the run's label column" in said
    assert json.loads((tmp_path / "m.json").read_text())["trained"]["n"] == len(frame)
