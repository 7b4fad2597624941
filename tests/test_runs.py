"""Training, run folders, save → load → predict, on tiny random models."""

import csv
import json

import numpy as np
import pytest
import torch

from loralab.config import TrainConfig
from loralab.errors import ModelError, RunError
from loralab.methods import load_saved_classifier
from loralab.runs.train import load_run, train_run

SAMPLE = ["the film was good", "a dull and boring plot", "okay", "charming acting, weak story"]


def config_for(model_dir, method, **kw):
    defaults = dict(method=method, model=str(model_dir), epochs=2, batch_size=16, lr=5e-3, seed=3)
    defaults.update(kw)
    return TrainConfig(**defaults)


@pytest.mark.parametrize("method", ["lora", "full", "head"])
def test_run_folder_is_complete_and_reloads_identically(tiny_bert, synthetic_dir, tmp_path, method):
    out = tmp_path / f"run-{method}"
    result = train_run(synthetic_dir, config_for(tiny_bert, method), out, progress=False)
    for name in (
        "config.json",
        "manifest.json",
        "metrics.json",
        "history.csv",
        "model/loralab.json",
        "predictions/validation.csv",
        "predictions/test.csv",
    ):
        assert (out / name).exists(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["reload_max_difference"] <= 1e-5
    assert manifest["versions"]["torch"] and manifest["trainable_parameters"] > 0
    history = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["epoch"]) for r in history] == [1, 2] and "val_accuracy" in history[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test"} and metrics["test"]["positive_label"] == "positive"
    reloaded = load_run(out)
    np.testing.assert_array_equal(reloaded.predict_proba(SAMPLE), result.classifier.predict_proba(SAMPLE))
    assert not list(out.glob("model.tmp*"))


def test_lora_adapter_loads_with_plain_peft(tiny_bert, synthetic_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path / "run"
    result = train_run(synthetic_dir, config_for(tiny_bert, "lora"), out, progress=False)
    adapter = json.loads((out / "model" / "adapter_config.json").read_text())
    assert adapter["modules_to_save"] and "classifier" in adapter["modules_to_save"]
    base = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
    model = PeftModel.from_pretrained(base, out / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    batch = tokenizer(SAMPLE, padding=True, return_tensors="pt")
    with torch.inference_mode():
        probs = model(**batch).logits.softmax(-1).numpy()
    np.testing.assert_allclose(probs, result.classifier.predict_proba(SAMPLE), atol=1e-5)


def test_lora_freezes_the_encoder_and_trains_the_head(tiny_bert, synthetic_dir, tmp_path):
    from loralab.models import linear_modules, load_classifier

    result = train_run(synthetic_dir, config_for(tiny_bert, "lora"), tmp_path / "r", progress=False)
    model = result.classifier.model
    base = load_classifier(str(tiny_bert), ["negative", "positive"]).model
    merged_free = dict(base.named_parameters())
    for name, param in model.base_model.model.named_parameters():
        if "lora_" in name or "modules_to_save" in name or "original_module" in name:
            continue
        assert torch.equal(param, merged_free[name.replace(".base_layer", "")]), name
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "modules_to_save" in n for n in trainable)
    # rank 8 on every linear layer of the encoder (all-linear, the default) plus the 32 → 2 head
    adapted = linear_modules(base, ["classifier"]).values()
    assert len(adapted) == 2 * 6 + 1  # 6 per layer and the pooler
    lora = sum(8 * (layer.in_features + layer.out_features) for layer in adapted)
    assert result.manifest["trainable_parameters"] == lora + 32 * 2 + 2


def test_head_tuning_changes_only_the_head(tiny_bert, synthetic_dir, tmp_path):
    from loralab.models import load_classifier

    result = train_run(synthetic_dir, config_for(tiny_bert, "head"), tmp_path / "r", progress=False)
    base = dict(load_classifier(str(tiny_bert), ["negative", "positive"]).model.named_parameters())
    for name, param in result.classifier.model.named_parameters():
        if not name.startswith("classifier"):
            assert torch.equal(param, base[name]), name
    assert result.manifest["trainable_parameters"] == 32 * 2 + 2


def test_zero_init_lora_is_a_no_op_before_training(tiny_bert):
    from loralab.methods import get_method

    config = config_for(tiny_bert, "lora")
    torch.manual_seed(0)
    lora_model = get_method("lora").build(["a", "b"], config).model
    plain = get_method("head").build(["a", "b"], config).model
    ids = torch.tensor([[2, 8, 22, 3]])
    with torch.inference_mode():
        torch.testing.assert_close(
            lora_model.eval()(input_ids=ids).logits, plain.eval()(input_ids=ids).logits
        )


def test_training_learns_the_synthetic_task(tiny_bert, synthetic_dir, tmp_path):
    config = config_for(tiny_bert, "full", epochs=6, lr=3e-3)
    result = train_run(synthetic_dir, config, tmp_path / "r", progress=False)
    assert result.metrics["test"]["accuracy"] >= 0.9


def test_same_seed_gives_the_same_run(tiny_bert, synthetic_dir, tmp_path):
    a = train_run(synthetic_dir, config_for(tiny_bert, "lora"), tmp_path / "a", progress=False)
    b = train_run(synthetic_dir, config_for(tiny_bert, "lora"), tmp_path / "b", progress=False)
    np.testing.assert_allclose(
        a.classifier.predict_proba(SAMPLE), b.classifier.predict_proba(SAMPLE), atol=1e-6
    )


def test_multiclass_uses_macro_metrics(tiny_bert, tmp_path):
    from tests.conftest import synthetic_frame

    path = tmp_path / "three.csv"
    synthetic_frame(150, classes=3).rename(columns={"label": "tone"}).to_csv(path, index=False)
    result = train_run(
        path, config_for(tiny_bert, "full", lr=3e-3), tmp_path / "r", label_col="tone", progress=False
    )
    test = result.metrics["test"]
    assert test["average"] == "macro" and set(test["per_class"]) == {"negative", "neutral", "positive"}
    assert len(test["confusion_matrix"]) == 3
    assert result.classifier.model.config.num_labels == 3


def test_output_folder_holding_a_run_is_refused_unless_overwrite(tiny_bert, synthetic_dir, tmp_path):
    out = tmp_path / "r"
    train_run(synthetic_dir, config_for(tiny_bert, "head", epochs=1), out, progress=False)
    with pytest.raises(
        RunError, match="already holds a run; choose another --output-dir or pass --overwrite"
    ):
        train_run(synthetic_dir, config_for(tiny_bert, "head", epochs=1), out, progress=False)
    train_run(synthetic_dir, config_for(tiny_bert, "head", epochs=1), out, overwrite=True, progress=False)


def test_unmatched_targets_leave_nothing_behind(tiny_bert, synthetic_dir, tmp_path):
    out = tmp_path / "r"
    with pytest.raises(ModelError, match="matches no linear layer"):
        train_run(synthetic_dir, config_for(tiny_bert, "lora", target_modules=["nope"]), out, progress=False)
    assert not out.exists()


def test_ctrl_c_marks_the_run_interrupted_without_model_files(
    tiny_bert, synthetic_dir, tmp_path, monkeypatch
):
    import loralab.training.loop as loop

    real = loop.F.cross_entropy
    calls = {"n": 0}

    def interrupt_later(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop.F, "cross_entropy", interrupt_later)
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        train_run(synthetic_dir, config_for(tiny_bert, "lora", epochs=3), out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert not (out / "model").exists() and not (out / "model.tmp").exists()
    with pytest.raises(RunError, match="the run is 'interrupted', not completed"):
        load_run(out)


def test_a_corrupted_save_fails_the_reload_check(tiny_bert, synthetic_dir, tmp_path, monkeypatch):
    from loralab.methods.finetune import HeadTuning

    real = HeadTuning.save_weights

    def bad_save(self, classifier, folder):
        real(self, classifier, folder)
        from safetensors.torch import load_file, save_file

        state = load_file(folder / "head.safetensors")
        save_file({k: v * 3.0 for k, v in state.items()}, folder / "head.safetensors")

    monkeypatch.setattr(HeadTuning, "save_weights", bad_save)
    out = tmp_path / "r"
    with pytest.raises(RunError, match="predicts differently"):
        train_run(synthetic_dir, config_for(tiny_bert, "head", epochs=1), out, progress=False)
    assert json.loads((out / "manifest.json").read_text())["status"] == "failed"


def test_saved_model_folder_without_info_is_refused(tmp_path):
    with pytest.raises(RunError, match="not a saved loralab model"):
        load_saved_classifier(tmp_path)


def test_untrained_run_is_the_untrained_model(tiny_bert, synthetic_dir, tmp_path):
    from loralab.models import load_classifier

    result = train_run(synthetic_dir, config_for(tiny_bert, "untrained"), tmp_path / "z", progress=False)
    assert result.manifest["status"] == "completed" and result.manifest["trainable_parameters"] == 0
    torch.manual_seed(3)  # the run's seed: the same fresh head
    fresh = load_classifier(str(tiny_bert), ["negative", "positive"]).model.eval()
    ids = torch.tensor([[2, 8, 22, 3]])
    with torch.inference_mode():
        expected = fresh(input_ids=ids).logits.softmax(-1).numpy()
    np.testing.assert_allclose(load_run(tmp_path / "z").predict_proba(["a good"]), expected, atol=1e-5)


def test_head_tuning_encodes_once_and_matches_training_through_the_encoder(
    tiny_bert, synthetic_dir, tmp_path
):
    from loralab.methods import finetune
    from loralab.methods.neural import NeuralMethod

    calls = {"encoder": 0}
    real_build = finetune.HeadTuning.build

    def counting_build(self, labels, config):
        prepared = real_build(self, labels, config)
        prepared.model.bert.register_forward_hook(
            lambda *a: calls.__setitem__("encoder", calls["encoder"] + 1)
        )
        return prepared

    config = config_for(tiny_bert, "head", epochs=8, lr=2e-2, eval_batch_size=64)
    finetune.HeadTuning.build = counting_build
    try:
        cached = train_run(synthetic_dir, config, tmp_path / "cached", progress=False)
    finally:
        finetune.HeadTuning.build = real_build
    # For all 8 epochs: 200 train + validation texts in batches of 64 (4 calls) and one 8-text
    # probe; then the final evaluation of validation and test, and the reload check (3 calls).
    assert calls["encoder"] == 4 + 1 + 3
    # The same head trained through the encoder every epoch reaches the same accuracy.
    original = finetune.HeadTuning.training_data
    finetune.HeadTuning.training_data = NeuralMethod.training_data
    try:
        through = train_run(synthetic_dir, config, tmp_path / "through", progress=False)
    finally:
        finetune.HeadTuning.training_data = original
    assert abs(cached.metrics["test"]["accuracy"] - through.metrics["test"]["accuracy"]) <= 0.1


def test_a_run_stopped_before_its_manifest_leaves_no_folder(synthetic_dir, tmp_path, monkeypatch):
    from loralab.runs.folder import RunFolder, write_json

    def start_then_stop(self, config, extra):
        write_json(self.path / "config.json", config)
        raise KeyboardInterrupt  # as a sweep's SIGTERM does, between config.json and manifest.json

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(RunFolder, "start", start_then_stop)
        with pytest.raises(KeyboardInterrupt):
            train_run(synthetic_dir, TrainConfig(method="tfidf-nb"), out, progress=False)
    assert not out.exists()
    # Run again, as a resumed sweep does: nothing is in the way.
    result = train_run(synthetic_dir, TrainConfig(method="tfidf-nb"), out, overwrite=True, progress=False)
    assert RunFolder(result.folder).is_completed()


@pytest.mark.parametrize("when", ["writing the completed manifest", "just after it"])
def test_a_stop_once_the_run_is_completed_leaves_it_completed(synthetic_dir, tmp_path, monkeypatch, when):
    # A sweep sends SIGTERM as soon as it sees a point completed; the run must stay completed,
    # with its model card, and not be marked interrupted by the stop.
    from loralab.runs import execute as execute_module
    from loralab.runs.folder import RunFolder

    real_finish = RunFolder.finish

    def finish_then_stop(self, status, **fields):
        if status == "completed" and when == "writing the completed manifest":
            self.update(status=status, **fields)  # the manifest is on disk, the lock still held
            raise KeyboardInterrupt
        real_finish(self, status, **fields)

    real_rmtree = execute_module.shutil.rmtree

    def rmtree_then_stop(path, *args, **kwargs):
        real_rmtree(path, *args, **kwargs)
        if str(path).endswith("checkpoints") and when == "just after it":
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(RunFolder, "finish", finish_then_stop)
        patch.setattr(execute_module.shutil, "rmtree", rmtree_then_stop)
        with pytest.raises(KeyboardInterrupt):
            train_run(synthetic_dir, TrainConfig(method="tfidf-nb"), out, progress=False)
    assert json.loads((out / "manifest.json").read_text())["status"] == "completed"
    assert (out / "README.md").exists()
    assert RunFolder(out).is_completed()


def test_zero_shot_is_an_alias_of_untrained_that_says_so():
    from loralab.methods import get_method, method_names

    with pytest.warns(FutureWarning, match="now called 'untrained'.*not zero-shot classification"):
        assert get_method("zero-shot") is get_method("untrained")
    assert "zero-shot" not in method_names()
