"""Batch scoring: chunks written as parts, resumed after an interruption, bad input named."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from loralab.config import TrainConfig
from loralab.errors import DataError
from loralab.runs.predict import parts_folder, predict_file
from loralab.runs.train import load_run, train_run
from tests.conftest import synthetic_frame


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_bert):
    root = tmp_path_factory.mktemp("scoring")
    data = root / "data"
    data.mkdir()
    for split, (n, seed) in {"train": (80, 1), "validation": (20, 2), "test": (20, 3)}.items():
        synthetic_frame(n, seed).to_csv(data / f"{split}.csv", index=False)
    config = TrainConfig(method="lora", model=str(tiny_bert), epochs=1, lr=5e-3, lora_rank=2)
    return train_run(data, config, root / "run", progress=False).folder


class Interrupting:
    """A classifier that stops (like Ctrl-C) after scoring ``limit`` chunks, counting its calls."""

    def __init__(self, classifier, limit=None):
        self.inner, self.limit, self.calls = classifier, limit, 0
        self.labels, self.method = classifier.labels, classifier.method

    def predict_proba(self, texts, batch_size=None):
        if self.limit is not None and self.calls >= self.limit:
            raise KeyboardInterrupt
        self.calls += 1
        return self.inner.predict_proba(texts, batch_size)


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_an_interrupted_job_resumes_with_only_the_missing_chunks(run, tmp_path, suffix):
    frame = synthetic_frame(95, 4)
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    classifier = load_run(run)
    target = tmp_path / f"out.{suffix}"
    with pytest.raises(KeyboardInterrupt):
        predict_file(Interrupting(classifier, limit=4), source, target, chunk_size=10)
    assert not target.exists()
    assert len(list(parts_folder(target).glob(f"*.{suffix}"))) == 4
    counting = Interrupting(classifier)
    assert predict_file(counting, source, target, chunk_size=10, resume=True).rows == 95
    assert counting.calls == 6  # chunks 5..10 only
    assert not parts_folder(target).exists()
    predict_file(classifier, source, tmp_path / f"whole.{suffix}", chunk_size=10)
    read = {"csv": pd.read_csv, "jsonl": lambda p: pd.read_json(p, lines=True), "parquet": pd.read_parquet}[
        suffix
    ]
    pd.testing.assert_frame_equal(read(target), read(tmp_path / f"whole.{suffix}"))


def test_resuming_after_the_input_changed_is_refused(run, tmp_path):
    source = tmp_path / "in.csv"
    synthetic_frame(30, 4).to_csv(source, index=False)
    classifier = load_run(run)
    with pytest.raises(KeyboardInterrupt):
        predict_file(Interrupting(classifier, limit=1), source, tmp_path / "out.csv", chunk_size=10)
    synthetic_frame(31, 4).to_csv(source, index=False)
    with pytest.raises(DataError, match="cannot resume, the job changed.*input_bytes"):
        predict_file(classifier, source, tmp_path / "out.csv", chunk_size=10, resume=True)
    # Without --resume the job starts over.
    assert predict_file(classifier, source, tmp_path / "out.csv", chunk_size=10).rows == 31


def test_a_non_utf8_line_is_named_and_nothing_is_left_behind(run, tmp_path):
    source = tmp_path / "in.csv"
    lines = ["text,label"] + [f"row {i} good,positive" for i in range(30)]
    data = "\n".join(lines).encode() + b"\ncaf\xe9 bad,negative\n"
    source.write_bytes(data)
    with pytest.raises(DataError, match=r"line 32 is not valid UTF-8"):
        predict_file(load_run(run), source, tmp_path / "out.csv", chunk_size=10)
    assert not (tmp_path / "out.csv").exists() and not parts_folder(tmp_path / "out.csv").exists()


def test_a_killed_predict_process_resumes(run, tmp_path):
    source = tmp_path / "in.csv"
    pd.concat([synthetic_frame(1000, s) for s in range(30)]).to_csv(source, index=False)
    target = tmp_path / "out.csv"
    command = [
        sys.executable,
        "-m",
        "loralab",
        "predict",
        str(run),
        "--input",
        str(source),
        "--output",
        str(target),
    ]
    command += ["--chunk-size", "500"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = parts_folder(target)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.csv"))) < 3:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(list(parts.glob("*.csv")))
    assert 3 <= done < 60 and not target.exists()
    result = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(target)
    assert len(scored) == 30_000 and scored["predicted"].notna().all()
    assert scored["text"].tolist() == pd.read_csv(source)["text"].tolist()


class Constant:
    """A classifier that needs no model: every text is 'positive' with probability 0.75."""

    labels, method = ["negative", "positive"], "fake"

    def predict_proba(self, texts, batch_size=None):
        return np.tile([0.25, 0.75], (len(texts), 1))


@pytest.mark.parametrize("suffix", ["csv", "tsv"])
def test_an_unnamed_index_column_keeps_its_empty_header(tmp_path, suffix):
    # a frame saved with pandas' default index=True: the first header cell is empty
    source = tmp_path / f"in.{suffix}"
    pd.DataFrame({"text": ["good", "bad"], "label": ["positive", "negative"]}, index=[7, 9]).to_csv(
        source, sep="," if suffix == "csv" else "\t"
    )
    target = tmp_path / f"out.{suffix}"
    assert predict_file(Constant(), source, target, chunk_size=1).rows == 2
    header, first = target.read_text().splitlines()[:2]
    sep = "," if suffix == "csv" else "\t"
    assert header.split(sep)[:3] == ["", "text", "label"] and "Unnamed" not in header
    assert first.split(sep)[:3] == ["7", "good", "positive"]


def test_a_semicolon_csv_with_a_bom_is_scored_into_one_like_it(tmp_path):
    source = tmp_path / "euro.csv"
    frame = pd.DataFrame({"text": [f"gut, Film {i}" for i in range(25)], "Note": "1,5"})
    source.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False, sep=";").encode())
    predict_file(Constant(), source, tmp_path / "out.csv", chunk_size=10)
    written = (tmp_path / "out.csv").read_bytes()
    assert written.startswith(b"\xef\xbb\xbftext;Note;predicted;probability;p_negative;p_positive\n")
    assert written.count(b"\xef\xbb\xbf") == 1  # the first part only, not every chunk's
    scored = pd.read_csv(tmp_path / "out.csv", sep=";", encoding="utf-8-sig")
    assert scored["text"].tolist() == frame["text"].tolist() and set(scored["predicted"]) == {"positive"}
    # A comma input, and any TSV output, are written as before.
    predict_file(Constant(), source, tmp_path / "out.tsv", chunk_size=10)
    assert (tmp_path / "out.tsv").read_bytes().startswith(b"text\tNote\tpredicted")
    frame.to_csv(tmp_path / "comma.csv", index=False)
    predict_file(Constant(), tmp_path / "comma.csv", tmp_path / "comma_out.csv", chunk_size=10)
    assert (tmp_path / "comma_out.csv").read_bytes().startswith(b"text,Note,predicted")


def test_scores_asked_for_as_a_spreadsheet_are_told_to_be_written_as_csv(tmp_path):
    synthetic_frame(5, 4).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(
        DataError,
        match=r"out.xlsx: unsupported file type; write a .csv, which the spreadsheet opens, or use one of",
    ):
        predict_file(Constant(), tmp_path / "in.csv", tmp_path / "out.xlsx")
