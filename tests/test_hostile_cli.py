"""Hostile input at the command line: each case of the fault matrix that once showed a
traceback, exited 0 on failure, or destroyed a file, as a test of the real CLI."""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import stat

import pandas as pd
import pytest

from loralab.errors import LOG_DIR_ENV
from tests import hostile_fixtures
from tests.conftest import synthetic_frame
from tests.hostile_fixtures import copy_run, invoke, one_sentence, tmpfs

hostile_data = hostile_fixtures.hostile_data
tfidf_run = hostile_fixtures.tfidf_run
lora_run = hostile_fixtures.lora_run

# --- 1. --max-length beyond the model's positions ------------------------------------------


def test_max_length_beyond_the_model_is_capped_and_said(hostile_data, tiny_bert, tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "train", hostile_data, "-m", "lora", "--model", tiny_bert, "--epochs", 1, "--max-length", 100000,
        "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "texts are cut at 64 tokens" in " ".join(result.output.split())
    assert json.loads((out / "config.json").read_text())["max_length"] == 64
    long_text = "good " * 3000
    predicted = invoke("predict", out, long_text)
    assert predicted.exit_code == 0, predicted.output


def test_a_run_saved_with_a_too_long_max_length_still_predicts_long_texts(lora_run, tmp_path):
    run = copy_run(lora_run, tmp_path)
    info_path = run / "model" / "loralab.json"
    info = json.loads(info_path.read_text())
    info["config"]["max_length"] = 100000
    info_path.write_text(json.dumps(info))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.pop("model_files")  # a run from before sizes were recorded
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("predict", run, "good " * 3000)
    assert result.exit_code == 0, result.output
    assert "texts are cut at 64 tokens" in " ".join(result.output.split())


# --- 3. config values of the wrong type ----------------------------------------------------


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"lr": "fast"}, "lr: expected a number, got 'fast'"),
        ({"epochs": 2.5}, "epochs: expected an integer, got 2.5"),
        ({"use_dora": "yes"}, "use_dora: expected true or false, got 'yes'"),
        ({"lora_rank": [4]}, "lora_rank: expected an integer, got [4]"),
    ],
)
def test_config_values_of_the_wrong_type(settings, expected, hostile_data, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(settings))
    message = one_sentence(invoke("train", hostile_data, "--config", config, "-o", tmp_path / "run"))
    assert expected in message
    assert not (tmp_path / "run").exists()


# --- 4. text that is not valid Unicode -----------------------------------------------------


def test_a_command_line_text_that_is_not_unicode_is_refused(lora_run):
    # Python turns the undecodable byte of $'caf\xe9' into the lone surrogate \udce9.
    message = one_sentence(invoke("predict", lora_run, "fine", "caf\udce9"))
    assert "text 2 is not valid Unicode (character 4" in message


def test_an_empty_command_line_text_is_refused_not_labelled(tfidf_run):
    message = one_sentence(invoke("predict", tfidf_run, "good", "  "))
    assert "the command line: text 2 is empty; send a text to classify." in message
    invisible = one_sentence(invoke("predict", tfidf_run, "good", "\u200b \u2060"))
    assert "text 2 is blank (only control or zero-width characters); send a text" in invisible


def test_texts_from_standard_input_one_a_line(tfidf_run):
    from loralab.cli import app
    from tests.hostile_fixtures import runner

    result = runner.invoke(app, ["predict", str(tfidf_run), "-"], input="a good film\n\na bad film\n")
    assert result.exit_code == 0, result.output
    assert "a good film" in result.output and "a bad film" in result.output
    empty = runner.invoke(app, ["predict", str(tfidf_run), "-"], input="\n \n")
    assert "Standard input held no text to classify." in one_sentence(empty)
    latin1 = runner.invoke(app, ["predict", str(tfidf_run), "-"], input=b"fine\ncaf\xe9\n")
    assert "standard input: line 2 is not valid Unicode" in one_sentence(latin1)
    latin1 = runner.invoke(app, ["predict", str(tfidf_run), "-"], input=b"fine\n\ncaf\xe9\n")
    assert "standard input: line 3 is not valid Unicode" in one_sentence(latin1)  # blank lines count
    # Only \n (or \r\n) ends a line: a lone \r, a form feed or U+2028 stays inside its text.
    result = runner.invoke(app, ["predict", str(tfidf_run), "-"], input="good\rbad\r\nfine\u2028film\x0cok\n")
    assert result.exit_code == 0, result.output
    assert len(re.findall(r"\b(positive|negative)\b", result.output)) == 2
    assert "blank line" not in result.output
    skipped = runner.invoke(app, ["predict", str(tfidf_run), "-"], input="good\n\n \x00\u200b\nbad\n")
    assert "2 blank line(s) of standard input skipped (line 2, 3)" in " ".join(skipped.output.split())


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_predict_and_evaluate_keep_to_threads(command, tfidf_run, hostile_data):
    import torch

    args = [tfidf_run, "good film"] if command == "predict" else [tfidf_run, hostile_data]
    assert "--threads must be ≥ 1, got 0." in one_sentence(invoke(command, *args, "--threads", 0))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert invoke(command, *args, "--threads", 1).exit_code == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_file_cell_that_is_not_unicode_is_named(tfidf_run, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "fine"}\n{"text": "caf\\udce9"}\n')
    message = one_sentence(invoke("predict", tfidf_run, "-i", source, "-o", tmp_path / "out.csv"))
    assert "in.jsonl: holds text that is not valid Unicode (a lone surrogate such as \\udce9" in message
    assert not (tmp_path / "out.csv").exists()


# --- 5. --chunk-size 0 ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, -3])
def test_chunk_size_below_one(size, tfidf_run, tmp_path):
    synthetic_frame(5).to_csv(tmp_path / "in.csv", index=False)
    message = one_sentence(
        invoke(
            "predict", tfidf_run, "-i", tmp_path / "in.csv", "-o", tmp_path / "o.csv", "--chunk-size", size
        )
    )
    assert f"--chunk-size must be ≥ 1, got {size}" in message


def test_predict_batch_size_below_one(tfidf_run):
    message = one_sentence(invoke("predict", tfidf_run, "a", "--batch-size", 0))
    assert "--batch-size must be ≥ 1, got 0" in message


# --- 6. read-only folders and full disks ----------------------------------------------------


def _enospc_after(monkeypatch, target, name: str, allowed: int = 0):
    """Make ``target.name`` fail with ENOSPC after ``allowed`` calls, as a full disk would."""
    original = getattr(target, name)
    calls = {"n": 0}

    def full(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > allowed:
            raise OSError(errno.ENOSPC, "No space left on device", str(args[0] if args else "?"))
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, full)


def test_full_disk_while_saving_keeps_the_run_it_was_replacing(
    tfidf_run, hostile_data, tmp_path, monkeypatch
):
    from loralab.runs.folder import RunFolder

    run = copy_run(tfidf_run, tmp_path)
    before = {p.name: p.read_bytes() for p in (run / "model").iterdir()}
    _enospc_after(monkeypatch, RunFolder, "save_model")
    message = one_sentence(invoke("train", hostile_data, "-m", "tfidf-logreg", "-o", run, "--overwrite"))
    assert "no space left on the device" in message
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
    assert {p.name: p.read_bytes() for p in (run / "model").iterdir()} == before
    assert not any(p.name.endswith((".tmp", ".replaced")) for p in tmp_path.iterdir())


def test_full_disk_while_scoring_leaves_no_output(tfidf_run, tmp_path, monkeypatch):
    import loralab.runs.predict as predict

    synthetic_frame(30).to_csv(tmp_path / "in.csv", index=False)
    _enospc_after(monkeypatch, predict, "_join_parts")
    message = one_sentence(
        invoke("predict", tfidf_run, "-i", tmp_path / "in.csv", "-o", tmp_path / "out.csv")
    )
    assert "no space left on the device" in message
    assert not (tmp_path / "out.csv").exists()


def test_a_real_full_disk_is_one_sentence(tfidf_run, tmp_path):
    big = pd.DataFrame({"text": ["a good and charming film " * 20] * 2000})
    big.to_csv(tmp_path / "in.csv", index=False)
    with tmpfs(tmp_path / "small", "64k") as small:
        message = one_sentence(invoke("predict", tfidf_run, "-i", tmp_path / "in.csv", "-o", small / "o.csv"))
        assert "no space left on the device" in message
        assert not (small / "o.csv").exists()
        # Only the hidden parts already scored remain, for a --resume once space is freed.
        assert [p.name for p in small.iterdir() if not p.name.endswith(".lock")] in ([], [".o.csv.parts"])


def test_a_real_read_only_folder_is_one_sentence(tfidf_run, hostile_data, tmp_path):
    synthetic_frame(5).to_csv(tmp_path / "in.csv", index=False)
    with tmpfs(tmp_path / "ro", read_only=True) as read_only:
        message = one_sentence(
            invoke("predict", tfidf_run, "-i", tmp_path / "in.csv", "-o", read_only / "o.csv")
        )
        assert "read-only" in message and str(read_only) in message
        message = one_sentence(invoke("train", hostile_data, "-m", "tfidf-logreg", "-o", read_only / "run"))
        assert "read-only" in message


# --- 7. a truncated compressed file -----------------------------------------------------------


def test_a_truncated_gzip_names_the_file(tfidf_run, tmp_path):
    whole = gzip.compress(synthetic_frame(400).to_csv(index=False).encode())
    (tmp_path / "in.csv.gz").write_bytes(whole[: len(whole) // 2])
    for args in (
        ("predict", tfidf_run, "-i", tmp_path / "in.csv.gz", "-o", tmp_path / "o.csv"),
        ("train", tmp_path / "in.csv.gz", "-m", "tfidf-logreg", "-o", tmp_path / "run"),
    ):
        message = one_sentence(invoke(*args))
        assert "in.csv.gz: the compressed file is truncated or damaged" in message
        assert "Aborted" not in message


# --- 8. a local model folder with a broken config.json --------------------------------------


def test_a_local_model_with_an_invalid_config_says_so(hostile_data, tiny_bert, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_bert, model)
    (model / "config.json").write_text("{ not json")
    message = one_sentence(invoke("train", hostile_data, "--model", model, "-o", tmp_path / "run"))
    assert f"{model}: the model folder is damaged or incomplete" in message
    assert "not in the Hugging Face cache" not in message


# --- 9, 10. column choices ---------------------------------------------------------------------


def test_text_and_label_from_the_same_column_is_refused(hostile_data, tmp_path):
    message = one_sentence(
        invoke("train", hostile_data, "-m", "tfidf-logreg", "--text-col", "label", "--label-col", "label",
               "-o", tmp_path / "run")
    )  # fmt: skip
    assert "--text-col and --label-col are both 'label'" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("header", ["text,label,label", "text,text,label"])
def test_duplicate_column_names_are_refused(header, tfidf_run, tmp_path):
    rows = "\n".join(f"good film {i},positive,negative" for i in range(10))
    (tmp_path / "dup.csv").write_text(f"{header}\n{rows}\n")
    repeated = "label" if header.endswith("label,label") else "text"
    for args in (
        ("train", tmp_path / "dup.csv", "-m", "tfidf-logreg", "-o", tmp_path / "run"),
        ("predict", tfidf_run, "-i", tmp_path / "dup.csv", "-o", tmp_path / "o.csv"),
    ):
        assert f"the column name(s) '{repeated}' occur more than once" in one_sentence(invoke(*args))


# --- 11. outputs that already exist ---------------------------------------------------------------


def test_predict_does_not_overwrite_an_unrelated_file_or_its_input(tfidf_run, tmp_path):
    synthetic_frame(5).to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "notes.csv").write_text("precious\n")
    message = one_sentence(
        invoke("predict", tfidf_run, "-i", tmp_path / "in.csv", "-o", tmp_path / "notes.csv")
    )
    assert "notes.csv: already exists" in message and "--overwrite" in message
    assert (tmp_path / "notes.csv").read_text() == "precious\n"
    before = (tmp_path / "in.csv").read_bytes()
    for extra in ((), ("--overwrite",)):
        args = ("predict", tfidf_run, "-i", tmp_path / "in.csv", "-o", tmp_path / "in.csv", *extra)
        assert "is the input file" in one_sentence(invoke(*args))
    assert (tmp_path / "in.csv").read_bytes() == before
    ok = invoke("predict", tfidf_run, "-i", tmp_path / "in.csv", "-o", tmp_path / "notes.csv", "--overwrite")
    assert ok.exit_code == 0 and "predicted" in (tmp_path / "notes.csv").read_text()


def test_evaluate_does_not_overwrite_an_existing_output(tfidf_run, hostile_data, tmp_path):
    (tmp_path / "metrics.json").write_text('{"mine": 1}')
    message = one_sentence(invoke("evaluate", tfidf_run, hostile_data, "--output", tmp_path / "metrics.json"))
    assert "metrics.json: already exists" in message
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"mine": 1}
    args = ("evaluate", tfidf_run, hostile_data, "--output", tmp_path / "metrics.json", "--overwrite")
    assert invoke(*args).exit_code == 0
    assert "trained" in json.loads((tmp_path / "metrics.json").read_text())


# --- 13. rows without text ----------------------------------------------------------------------


def test_every_input_row_gets_an_output_row(tfidf_run, tmp_path):
    (tmp_path / "in.csv").write_text("text\nhello\n   \nworld\n\n\u200b\n")
    result = invoke("predict", tfidf_run, "-i", tmp_path / "in.csv", "-o", tmp_path / "o.csv")
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "o.csv", skip_blank_lines=False)
    assert len(out) == 5
    assert out["predicted"].isna().tolist() == [False, True, False, True, True]
    said = " ".join(result.output.split())
    assert "Scored 5 rows" in said and "3 row(s) have no text in column 'text' (rows 2, 4, 5)" in said


def test_jsonl_rows_with_null_or_missing_text_are_reported(tfidf_run, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"text": "good"}\n{"text": null}\n{"id": 3}\n{"text": "bad"}\n')
    result = invoke("predict", tfidf_run, "-i", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["predicted"] is None for r in rows] == [False, True, True, False]
    assert "(rows 2, 3)" in " ".join(result.output.split())


# --- 17. file modes, the --resume hint, the internal-error line ----------------------------------


def test_run_files_and_outputs_get_the_umasks_modes(hostile_data, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert invoke("train", hostile_data, "-m", "tfidf-logreg", "-o", out).exit_code == 0
        synthetic_frame(5).to_csv(tmp_path / "in.csv", index=False)
        assert invoke("predict", out, "-i", tmp_path / "in.csv", "-o", tmp_path / "o.csv").exit_code == 0
        assert invoke("export", out, tmp_path / "export").exit_code == 0
        assert invoke("report", out).exit_code == 0
    finally:
        os.umask(old)
    written = [*out.rglob("*"), *(tmp_path / "export").rglob("*")]
    assert {"report.html", "report.md"} <= {p.name for p in written}
    files = [p for p in written if p.is_file() and not p.name.endswith(".lock")] + [tmp_path / "o.csv"]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {"0o644"}
    folders = [out, tmp_path / "export", *[p for p in written if p.is_dir()]]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {"0o755"}


def test_refusing_an_interrupted_run_suggests_resume(tfidf_run, hostile_data, tmp_path):
    run = copy_run(tfidf_run, tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    message = one_sentence(invoke("train", hostile_data, "-m", "tfidf-logreg", "-o", run))
    assert "'interrupted'; continue it with --resume" in message and "--overwrite" in message


def test_a_bug_is_one_line_and_its_traceback_goes_to_the_log(tfidf_run, tmp_path, monkeypatch):
    import loralab.runs.predict as predict

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(predict, "load_for_prediction", broken)
    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path / "logs"))
    result = invoke("predict", tfidf_run, "good")
    message = one_sentence(result, code=1) if False else " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "internal error (ZeroDivisionError: division by zero); please report it" in message
    logs = list((tmp_path / "logs").iterdir())
    assert len(logs) == 1 and "Traceback" in logs[0].read_text() and "broken" in logs[0].read_text()


def test_a_reader_that_stops_early_ends_the_scoring_quietly(tfidf_run, tmp_path):
    """``loralab predict RUN --input F | head``: the closed pipe ends the command with the
    shell's SIGPIPE status and nothing on stderr, not an internal error."""
    import subprocess
    import sys

    source = tmp_path / "many.csv"
    pd.DataFrame({"text": [f"a fine film, number {i}" for i in range(20_000)]}).to_csv(source, index=False)
    command = [sys.executable, "-m", "loralab", "predict", tfidf_run, "--input", source]
    process = subprocess.Popen(
        [str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    header = process.stdout.readline()
    process.stdout.close()  # what `head -1` does once it has its line
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 141, stderr
    assert header.startswith("text,") and "error" not in stderr and "Traceback" not in stderr
