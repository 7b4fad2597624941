"""SetFit as a method: fit, save without pickle, reload, predict; and its bad inputs."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from loralab.config import TrainConfig
from loralab.errors import LoralabError
from loralab.methods import get_method
from loralab.runs.train import load_run, train_run
from tests.test_pooling import sentence_transformer_folder

pytest.importorskip("setfit")


@pytest.fixture(scope="module")
def tiny_sentence_transformer(tmp_path_factory, tiny_bert):
    return sentence_transformer_folder(tiny_bert, tmp_path_factory.mktemp("st") / "model")


def test_setfit_fits_saves_loads_and_predicts(tiny_sentence_transformer, synthetic_dir, tmp_path):
    config = TrainConfig(method="setfit", model=str(tiny_sentence_transformer), setfit_max_pairs=64, lr=1e-4)
    out = tmp_path / "run"
    result = train_run(synthetic_dir, config, out, progress=False)
    contrastive = result.manifest["contrastive"]
    # 160 training texts, a budget of 64 pairs: 32 texts sampled, 4 steps of 16 pairs
    assert contrastive == {"texts": 32, "pairs": 64, "steps": 4, "max_pairs": 64, "limited_by_budget": True}
    assert result.manifest["status"] == "completed" and result.manifest["reload_max_difference"] <= 1e-5
    files = {p.name for p in (out / "model").iterdir()}
    assert {"loralab.json", "head.safetensors", "body"} <= files
    assert not list(out.rglob("*.pkl")) and not list(out.rglob("checkpoint*"))
    body_weights = list((out / "model" / "body").rglob("*.safetensors"))
    assert body_weights, "the fine-tuned body is saved as safetensors"
    trainable, total = result.classifier.parameter_counts()
    assert trainable == total > 32 * 64  # the whole body trains
    texts = ["the film was good", "a dull and boring plot"]
    reloaded = load_run(out)
    np.testing.assert_allclose(
        reloaded.predict_proba(texts), result.classifier.predict_proba(texts), atol=1e-6
    )
    assert reloaded.predict(texts) == result.classifier.predict(texts)
    assert reloaded.predict_proba([]).shape == (0, 2)
    # the body moved: the fine-tuned embeddings differ from the pretrained ones
    from sentence_transformers import SentenceTransformer

    before = SentenceTransformer(str(tiny_sentence_transformer), device="cpu").encode(texts)
    after = reloaded.setfit_model.model_body.encode(texts)
    assert not np.allclose(before, after, atol=1e-4)
    _predict_evaluate_and_serve(out, synthetic_dir, reloaded.predict(texts), texts)


def test_setfit_lora_trains_adapters_and_saves_a_merged_body(
    tiny_sentence_transformer, synthetic_dir, tmp_path
):
    config = TrainConfig(
        method="setfit-lora", model=str(tiny_sentence_transformer), setfit_max_pairs=64, lora_rank=4
    )
    out = tmp_path / "run"
    result = train_run(synthetic_dir, config, out, progress=False)
    manifest = result.manifest
    assert manifest["status"] == "completed" and manifest["reload_max_difference"] <= 1e-5
    assert manifest["resolved"]["lr"] == 1e-3  # the adapters' default, not the body's 2e-5
    # the run records the initialisation it used; the manifest keeps what was asked (nothing)
    assert json.loads((out / "config.json").read_text())["lora_init"] == "kaiming"
    assert manifest["requested"]["lora_init"] is None
    contrastive = manifest["contrastive"]
    trainable, total = result.classifier.parameter_counts()
    head = 32 + 1  # two classes: one row of weights over the tiny model's 32 dimensions, one intercept
    assert trainable == contrastive["adapter_parameters"] + head < total / 4
    # rank 4 on each adapted layer: (in + out) * 4 weights each
    encoder = result.classifier.setfit_model.model_body[0].auto_model
    layers = dict(encoder.named_modules())
    sizes = [layers[name].in_features + layers[name].out_features for name in manifest_targets(encoder)]
    assert contrastive["adapter_parameters"] == 4 * sum(sizes) and contrastive["adapted_layers"] == len(sizes)
    # merged: the saved body is a plain sentence-transformer, with no adapter weights in it
    import safetensors.torch

    saved = {}
    for path in (out / "model" / "body").rglob("*.safetensors"):
        saved |= safetensors.torch.load_file(str(path))
    assert saved and not any("lora_" in key for key in saved)
    texts = ["the film was good", "a dull and boring plot"]
    reloaded = load_run(out)
    np.testing.assert_allclose(
        reloaded.predict_proba(texts), result.classifier.predict_proba(texts), atol=1e-6
    )
    assert reloaded.parameter_counts() == (trainable, total)
    from sentence_transformers import SentenceTransformer

    before = SentenceTransformer(str(tiny_sentence_transformer), device="cpu").encode(texts)
    assert not np.allclose(before, reloaded.setfit_model.model_body.encode(texts), atol=1e-4)


def test_setfit_lora_adapters_follow_the_seed_and_the_lora_settings(tiny_sentence_transformer):
    from loralab.methods.setfit import BodyAdapters, _body

    def adapters(**settings):
        config = TrainConfig(method="setfit-lora", model=str(tiny_sentence_transformer), **settings)
        config = get_method("setfit-lora").settled(config)
        body = _body(str(tiny_sentence_transformer), config)
        made = BodyAdapters(body, config)
        return made, {n: p.detach().clone() for n, p in body.named_parameters() if "lora_" in n}

    torch.manual_seed(0)
    first, a = adapters(seed=1)
    torch.rand(100)  # whatever ran before in the process
    _, b = adapters(seed=1)
    _, c = adapters(seed=2)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    # unset, --lora-init is setfit-lora's own default, kaiming, not LoRA's normal
    _, kaiming = adapters(seed=1, lora_init="kaiming")
    _, normal = adapters(seed=1, lora_init="normal")
    assert all(torch.equal(a[k], kaiming[k]) for k in a)
    assert not all(torch.equal(a[k], normal[k]) for k in a)
    # every body weight outside the adapters is frozen; the adapters are what trains
    assert first.trained_parameters == sum(v.numel() for v in a.values())
    assert all(not p.requires_grad for n, p in first.body.named_parameters() if "lora_" not in n)
    # the run's LoRA settings reach PEFT: DoRA adds a magnitude vector, bias=all trains biases
    made, weights = adapters(use_dora=True, lora_bias="all", lora_rank=2)
    names = {n for n, p in made.body.named_parameters() if p.requires_grad}
    assert any("lora_magnitude_vector" in n for n in names) and any(n.endswith(".bias") for n in names)
    assert all(v.shape[0] == 2 for k, v in weights.items() if "lora_A" in k)
    made.merge_and_unload()
    assert all(p.requires_grad for p in made.body.parameters())
    assert not any("lora_" in n for n, _ in made.body.named_parameters())


def test_setfit_lora_refuses_loraplus(tiny_sentence_transformer):
    config = TrainConfig(method="setfit-lora", model=str(tiny_sentence_transformer), loraplus_lr_ratio=16)
    with pytest.raises(LoralabError, match="setfit library's own optimizer"):
        get_method("setfit-lora").check(config)


def test_setfit_lora_checks_its_target_modules_on_the_model_before_training(tiny_sentence_transformer):
    # what a comparison asks of every method before its first run
    config = TrainConfig(method="setfit-lora", model=str(tiny_sentence_transformer), target_modules=["qurey"])
    with pytest.raises(LoralabError, match="Target module 'qurey' matches no linear layer"):
        get_method("setfit-lora").check_model(config, ["negative", "positive"])
    get_method("setfit-lora").check_model(config.replace(target_modules=["query"]), ["negative", "positive"])


def manifest_targets(encoder):
    """The linear layers of a BERT encoder outside its pooler: what setfit-lora adapts."""
    import torch

    return [
        name
        for name, module in encoder.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.startswith("pooler")
    ]


def _predict_evaluate_and_serve(run, data, predicted, texts):
    """The run works like any other: predict, evaluate and serve read it from its folder."""
    from typer.testing import CliRunner

    from loralab.cli import app
    from loralab.serving.predictor import Predictor

    result = CliRunner().invoke(app, ["predict", str(run), *texts])
    assert result.exit_code == 0, result.output
    assert all(label in result.output for label in predicted)
    result = CliRunner().invoke(app, ["evaluate", str(run), str(data)])
    assert result.exit_code == 0 and "accuracy" in result.output, result.output
    served = Predictor([run]).classify(run.name, texts)
    assert [row["label"] for row in served] == predicted
    result = CliRunner().invoke(app, ["predict", str(run), "--backend", "onnx", *texts])
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["export", str(run), str(run.parent / "exported")])
    assert result.exit_code == 2 and "no single-file export" in " ".join(result.output.split())


def test_small_data_uses_every_text_within_budget(tiny_sentence_transformer, tmp_path):
    words = {"positive": "good great fine lovely".split(), "negative": "bad awful dull poor".split()}
    rows = [{"text": f"the film was {w}", "label": label} for label, ws in words.items() for w in ws]
    splits_dir = tmp_path / "split"
    splits_dir.mkdir()
    pd.DataFrame(rows).to_csv(splits_dir / "train.csv", index=False)
    pd.DataFrame(rows).to_csv(splits_dir / "validation.csv", index=False)
    pd.DataFrame(rows).to_csv(splits_dir / "test.csv", index=False)
    config = TrainConfig(method="setfit", model=str(tiny_sentence_transformer))
    result = train_run(splits_dir, config, tmp_path / "r", progress=False)
    # 8 texts, 20 positive and 20 negative pairs per text: 320 pairs, 20 steps of 16
    assert result.manifest["contrastive"] == {
        "texts": 8,
        "pairs": 320,
        "steps": 20,
        "max_pairs": 2000,
        "limited_by_budget": False,
    }


def test_setfit_needs_a_sentence_transformer(tiny_bert, synthetic_dir, tmp_path):
    with pytest.raises(LoralabError, match="fine-tunes a sentence-transformers model, and .* is not one"):
        train_run(
            synthetic_dir, TrainConfig(method="setfit", model=str(tiny_bert)), tmp_path / "r", progress=False
        )
    assert not (tmp_path / "r").exists()


def test_setfit_needs_two_texts_per_class(tiny_sentence_transformer, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    pd.DataFrame({"text": ["good", "bad", "fine"], "label": ["pos", "neg", "pos"]}).to_csv(
        folder / "train.csv", index=False
    )
    for split in ("validation", "test"):
        pd.DataFrame({"text": ["good", "bad"], "label": ["pos", "neg"]}).to_csv(
            folder / f"{split}.csv", index=False
        )
    config = TrainConfig(method="setfit", model=str(tiny_sentence_transformer))
    with pytest.raises(
        LoralabError, match="every class needs at least 2 training texts; neg has 1 .neg 1, pos 2."
    ):
        train_run(folder, config, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_missing_extra_is_named(tiny_sentence_transformer, synthetic_dir, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_setfit(name, *args, **kwargs):
        if name == "setfit" or name.startswith("setfit."):
            raise ImportError("No module named 'setfit'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_setfit)
    from typer.testing import CliRunner

    from loralab.cli import app

    args = ["train", str(synthetic_dir), "--method", "setfit", "--model", str(tiny_sentence_transformer)]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "needs the setfit extra, which is not installed: pip install 'loralab[setfit]'." in result.output
    assert not (tmp_path / "r").exists()


def test_setfit_in_compare_runs_every_seed(tiny_sentence_transformer, synthetic_dir, tmp_path):
    import json

    from typer.testing import CliRunner

    from loralab.cli import app

    out = tmp_path / "cmp"
    args = ["compare", str(synthetic_dir), "--methods", "majority,setfit", "--seeds", "2"]
    args += ["--model", str(tiny_sentence_transformer), "--setfit-max-pairs", "32", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["seed"]) for r in results["runs"]] == [
        ("majority", 42),
        ("setfit", 42),
        ("setfit", 43),
    ]
    assert results["recommendation"]["method"] == "setfit"  # the majority class is never recommended
    manifest = json.loads((out / "setfit-seed43" / "manifest.json").read_text())
    assert manifest["contrastive"]["max_pairs"] == 32 and manifest["contrastive"]["steps"] == 2


def test_default_ladder_leaves_out_setfit_for_a_plain_encoder(
    tiny_bert, synthetic_dir, tmp_path, monkeypatch
):
    from loralab.runs import compare as compare_module

    monkeypatch.setattr(compare_module, "DEFAULT_LADDER", ["majority", "tfidf-nb", "setfit"])
    results = compare_module.compare(
        str(synthetic_dir), tmp_path / "cmp", base_config=TrainConfig(model=str(tiny_bert)), progress=False
    )
    assert [r["method"] for r in results["runs"]] == ["majority", "tfidf-nb"]
    assert "is not one" in results["left_out"]["setfit"]


@pytest.mark.parametrize("progress", [False, True])
def test_training_prints_no_trainer_log(tiny_sentence_transformer, tmp_path, capsys, progress):
    # the Trainer's closing dict of metrics ({'train_runtime': …}) landed in the middle of compare's table
    pairs = [("pos", "good"), ("neg", "bad")] * 2
    rows = [{"text": f"the film was {w}", "label": label} for label, w in pairs]
    splits_dir = tmp_path / "split"
    splits_dir.mkdir()
    for split in ("train", "validation", "test"):
        pd.DataFrame(rows).to_csv(splits_dir / f"{split}.csv", index=False)
    config = TrainConfig(method="setfit", model=str(tiny_sentence_transformer), setfit_max_pairs=32)
    train_run(splits_dir, config, tmp_path / "r", progress=progress)
    captured = capsys.readouterr()
    assert "train_runtime" not in captured.out + captured.err
