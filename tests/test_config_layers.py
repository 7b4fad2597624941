"""Settings declared once: the same flags on every command, and config layering
(defaults < file < --set < flags) from YAML or JSON files, with type errors in one sentence."""

import dataclasses
import json

import pytest
import typer
from sklearn.base import clone
from typer.testing import CliRunner

from loralab import TextClassifier
from loralab.cli import app
from loralab.config import TrainConfig
from loralab.config_files import JobConfig, layer_settings

runner = CliRunner()
COMMAND = typer.main.get_command(app)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def command(path: str):
    found = COMMAND
    for name in path.split():
        found = found.commands[name]
    return found


def options_of(path: str) -> dict:
    params = command(path).params
    return {decl: param for param in params if param.param_type_name == "option" for decl in param.opts}


def exposed_settings(cls=TrainConfig) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("help")]


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def write(path, data):
    if path.suffix == ".json":
        path.write_text(json.dumps(data))
    else:
        import yaml

        path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("path", ["train", "evaluate", "compare", "sweep", "data inspect", "lowrank"])
@pytest.mark.parametrize("name", ["text_col", "label_col", "subset"])
def test_every_command_that_reads_data_takes_the_same_data_flags(path, name):
    option = options_of(path)[flag(name)]
    if path == "evaluate" and name != "subset":  # its columns default to the run's own
        assert (
            option.help.split(" (default:")[0] == options_of("train")[flag(name)].help.split(" (default:")[0]
        )
        assert "(default: the run's" in option.help
    else:
        assert option.help == options_of("train")[flag(name)].help
    assert option.help.startswith(
        next(f for f in dataclasses.fields(JobConfig) if f.name == name).metadata["help"]
    )


@pytest.mark.parametrize("path", ["train", "compare", "sweep"])
def test_every_training_setting_is_a_flag_of_every_training_command(path):
    options = options_of(path)
    for name in exposed_settings():
        if path == "compare" and name == "method":
            continue  # compare takes --methods
        item = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
        wanted = (item.metadata.get("flag") or flag(name)).split("/")[0]
        assert wanted in options, f"{path} lacks {wanted}"
        assert options[wanted].help.startswith(item.metadata["help"])
    for shared in ("--config", "--set"):
        assert shared in options


def test_shared_settings_keep_one_help_text_in_every_command():
    for name in ("model", "max_length", "seed"):
        helps = {options_of(p)[flag(name)].help for p in ("train", "compare", "sweep", "data inspect")}
        assert len(helps) == 1, helps


def test_layering_order_defaults_file_set_flags(tmp_path):
    path = write(
        tmp_path / "job.yaml", {"lora_rank": 2, "lora_alpha": 4.0, "lora_dropout": 0.2, "text_col": "review"}
    )
    settings, job = layer_settings(
        path, ["lora_alpha=8", "lora_dropout=0.3"], {"lora_dropout": 0.4, "lr": None}
    )
    config = TrainConfig.from_dict(settings)
    assert (config.lora_rank, config.lora_alpha, config.lora_dropout) == (2, 8.0, 0.4)
    assert config.seed == TrainConfig().seed and config.lr is None  # untouched: defaults
    assert (job.text_col, job.label_col) == ("review", "label")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_train_layers_file_set_and_flags(tmp_path, synthetic_dir, suffix):
    path = write(
        tmp_path / f"settings{suffix}",
        {"method": "tfidf-logreg", "tfidf_ngram_max": 3, "baseline_c": 0.5, "tfidf_max_features": 100},
    )
    out = tmp_path / "run"
    result = invoke(
        "train", synthetic_dir, "--config", path, "--set", "baseline_c=0.25",
        "--set", "tfidf_max_features=200", "--tfidf-max-features", 300, "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["method"] == "tfidf-logreg"
    assert (saved["tfidf_ngram_max"], saved["baseline_c"], saved["tfidf_max_features"]) == (3, 0.25, 300)
    assert saved["seed"] == 42


@pytest.mark.parametrize(
    "suffix, content, sentence",
    [
        (".json", '{"lr": "fast"}', "lr: expected a number, got 'fast'."),
        (".yaml", "lora_rank: four\n", "lora_rank: expected an integer, got 'four'."),
        (".yaml", "use_dora: 3\n", "use_dora: expected true or false, got 3."),
        (".yaml", "subset: many\n", "subset: expected an integer, got 'many'."),
        (".yml", "- lr\n- 1e-3\n", "a config file holds settings as key: value pairs, not a list."),
        (".json", '{"lr": 1e-3,', "not valid JSON (line 1"),
        (".yaml", "lr: [1e-3\n", "not valid YAML (line"),
        (".yaml", "lora_rnak: 4\n", "unknown setting 'lora_rnak' (did you mean 'lora_rank'"),
    ],
)
def test_bad_values_in_a_file_are_one_sentence_naming_file_and_key(
    tmp_path, synthetic_dir, suffix, content, sentence
):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    result = invoke("train", synthetic_dir, "--config", path)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    message = result.output.replace("\n", " ")
    assert str(path.name) in message and sentence in message
    assert not (tmp_path / "runs").exists()  # nothing half-written


@pytest.mark.parametrize(
    "assignment, sentence",
    [
        ("lora_rank=four", "lora_rank: expected an integer, got 'four'"),
        ("use_rslora=maybe", "use_rslora: expected true or false, got 'maybe'"),
        ("lr", "--set takes key=value, got 'lr'"),
        ("lora_rnak=4", "unknown setting 'lora_rnak'"),
    ],
)
def test_bad_set_values_are_one_sentence(synthetic_dir, assignment, sentence):
    for path in ("train", "compare"):
        result = invoke(path, synthetic_dir, "--set", assignment)
        assert result.exit_code == 2 and sentence in result.output.replace("\n", " ")


def test_yaml_numbers_written_without_a_dot_still_read_as_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "lr: 1e-3\nlora_alpha: 8\ntarget_modules: [query, value]\n"
    )  # YAML 1.1 reads 1e-3 as text
    settings, _ = layer_settings(path, [], {})
    config = TrainConfig.from_dict(settings)
    assert config.lr == 1e-3 and config.lora_alpha == 8.0 and config.target_modules == ["query", "value"]


def test_a_file_naming_the_data_describes_the_whole_job(tmp_path, synthetic_dir):
    renamed = tmp_path / "jobs" / "data"
    renamed.mkdir(parents=True)
    for split in ("train", "validation", "test"):
        frame = (synthetic_dir / f"{split}.csv").read_text().replace("text,label", "review,bias", 1)
        (renamed / f"{split}.csv").write_text(frame)
    columns = {"text_col": "review", "label_col": "bias"}
    job = write(
        tmp_path / "jobs" / "job.yaml",
        {"data": "data", **columns, "method": "tfidf-nb", "output_dir": str(tmp_path / "run")},
    )
    result = invoke("train", "--config", job)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["columns"] == {"text": "review", "label": "bias"}
    assert manifest["status"] == "completed"

    compare_job = write(
        tmp_path / "jobs" / "cmp.yaml", {"data": "data", **columns, "methods": ["tfidf-nb", "tfidf-logreg"]}
    )
    result = invoke("compare", "--config", compare_job, "-o", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "cmp" / "results.json").read_text())["summary"]
    assert [row["method"] for row in summary] == ["tfidf-nb", "tfidf-logreg"]
    result = invoke("compare", "--config", compare_job, "--methods", "tfidf-nb", "-o", tmp_path / "cmp2")
    assert result.exit_code == 0, result.output  # the flag overrides the file
    assert len(json.loads((tmp_path / "cmp2" / "results.json").read_text())["summary"]) == 1


def test_without_data_anywhere_the_error_says_where_to_give_it(tmp_path):
    result = invoke("train", "--config", write(tmp_path / "c.json", {"lora_rank": 4}))
    assert result.exit_code == 2 and "Give DATA on the command line" in result.output


def test_compare_takes_training_flags_and_a_config_file(tmp_path, synthetic_dir):
    path = write(tmp_path / "c.yaml", {"tfidf_ngram_max": 1, "seed": 7})
    out = tmp_path / "cmp"
    result = invoke(
        "compare", synthetic_dir, "--methods", "tfidf-nb", "--config", path, "--baseline-c", 0.5, "-o", out
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "tfidf-nb" / "config.json").read_text())
    assert (saved["tfidf_ngram_max"], saved["seed"], saved["baseline_c"]) == (1, 7, 0.5)
    again = invoke(
        "compare", synthetic_dir, "--methods", "tfidf-nb", "--config", path, "--baseline-c", 0.5, "-o", out
    )
    assert "(reused)" in again.output


def test_evaluate_takes_subset(tmp_path, synthetic_dir):
    out = tmp_path / "run"
    assert invoke("train", synthetic_dir, "--method", "tfidf-nb", "-o", out).exit_code == 0
    metrics = tmp_path / "m.json"
    result = invoke("evaluate", out, synthetic_dir, "--subset", 10, "--output", metrics)
    assert result.exit_code == 0, result.output
    assert json.loads(metrics.read_text())["trained"]["n"] == 10


def test_config_json_holds_the_values_the_run_used(tmp_path, synthetic_dir, tiny_bert):
    out = tmp_path / "run"
    result = invoke("train", synthetic_dir, "--model", tiny_bert, "--epochs", 1, "--threads", 1, "-o", out)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert saved["lr"] == manifest["resolved"]["lr"] is not None
    assert saved["batch_size"] == manifest["resolved"]["batch_size"] is not None
    assert saved["precision"] == manifest["resolved"]["precision"] != "auto"
    assert manifest["requested"]["lr"] is None  # what was asked: the method's default
    # The stored config reruns the run: it is a valid config file.
    settings, _ = layer_settings(out / "config.json", [], {})
    assert TrainConfig.from_dict(settings).lr == saved["lr"]


def test_text_classifier_takes_every_setting_as_an_explicit_keyword():
    params = TextClassifier().get_params()
    assert set(params) == set(exposed_settings()) | {"validation_fraction", "progress"}
    defaults = TrainConfig()
    for name in exposed_settings():
        assert params[name] == getattr(defaults, name), name
    estimator = TextClassifier(method="full", lora_rank=4, pooling="mean")
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params()
    assert copy._config() == TrainConfig(method="full", lora_rank=4, pooling="mean")
    with pytest.raises(TypeError, match="lora_rnak"):
        TextClassifier(lora_rnak=4)


def test_sweep_reads_data_and_fixed_settings_from_a_config_file(tmp_path, synthetic_dir):
    job = write(
        tmp_path / "sweep.yaml", {"data": str(synthetic_dir), "method": "tfidf-nb", "tfidf_ngram_max": 1}
    )
    out = tmp_path / "sweep"
    result = invoke(
        "sweep", "--config", job, "baseline_c=0.5,1.0", "--set", "tfidf_max_features=100", "-o", out
    )
    assert result.exit_code == 0, result.output
    spec = json.loads((out / "sweep.json").read_text())
    assert spec["data"] == str(synthetic_dir) and spec["grid"] == {"baseline_c": ["0.5", "1"]}
    point = json.loads((out / "baseline_c-0.5" / "config.json").read_text())
    assert (point["method"], point["tfidf_ngram_max"], point["tfidf_max_features"]) == ("tfidf-nb", 1, 100)


def test_every_setting_declares_its_help_text():
    # A field without help stays off the command line and out of TextClassifier: only the
    # free-form ``extra`` mapping should be like that.
    hidden = [f.name for f in dataclasses.fields(TrainConfig) if not f.metadata.get("help")]
    assert hidden == ["extra"], f"declare these with setting(default, help): {hidden}"


def test_a_new_field_with_help_becomes_an_option(monkeypatch):
    from loralab.cli import options
    from loralab.config import setting

    @dataclasses.dataclass
    class Extended(TrainConfig):
        stride: int = setting(64, "Tokens shared by neighbouring windows.")

    monkeypatch.setattr(options, "TrainConfig", Extended)
    generated = {p.name: p for p in options.training_options()}
    assert "stride" in generated and generated["stride"].annotation == int | None
    assert generated["stride"].default.param_decls == ("--stride",)
    assert generated["stride"].default.help == "Tokens shared by neighbouring windows. (default: 64)"


@pytest.mark.parametrize("path", ["evaluate", "lowrank", "data inspect", "train", "compare"])
def test_every_command_refuses_an_empty_subset_before_any_work(tmp_path, synthetic_dir, path):
    run = [tmp_path] if path in ("evaluate", "lowrank") else []
    result = invoke(*path.split(), *run, synthetic_dir, "--subset", 0)
    assert result.exit_code == 2 and "--subset must be ≥ 1, got 0." in result.output
