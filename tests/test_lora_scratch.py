"""LoRA from scratch: the layer's invariants, layer surgery, and parity with PEFT."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from loralab.config import TrainConfig
from loralab.methods import get_method
from loralab.methods.lora.layer import LoRALinear
from loralab.models.surgery import extract, num_trainable_parameters, replace
from loralab.runs.train import load_run, train_run

LABELS = ["negative", "positive"]
IDS = torch.tensor([[2, 8, 22, 20, 3, 0], [2, 9, 11, 3, 0, 0]])
MASK = (IDS != 0).long()


def test_zero_initialised_adapter_is_a_no_op():
    base = nn.Linear(16, 8)
    layer = LoRALinear(base, rank=4, alpha=8)
    x = torch.randn(3, 16)
    torch.testing.assert_close(layer(x), base(x))


@pytest.mark.parametrize("init", ["normal", "kaiming"])
def test_merge_and_unmerge_keep_the_outputs(init):
    base = nn.Linear(16, 8)
    original = base.weight.detach().clone()
    layer = LoRALinear(base, rank=4, alpha=8, init=init)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(5, 16)
    unmerged = layer(x)
    torch.testing.assert_close(layer.delta_weight(), layer.lora_B @ layer.lora_A * 2.0)
    layer.merge()
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=1e-5)
    layer.unmerge()
    torch.testing.assert_close(base.weight, original, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(layer(x), unmerged)


def test_safe_merge_refuses_non_finite_weights():
    layer = LoRALinear(nn.Linear(4, 4), rank=2, alpha=4)
    with torch.no_grad():
        layer.lora_B.fill_(float("inf"))
    before = layer.base_layer.weight.detach().clone()
    with pytest.raises(ValueError, match="non-finite"):
        layer.merge()
    assert torch.equal(layer.base_layer.weight, before) and not layer.merged


def test_rank_larger_than_the_layer_is_refused():
    with pytest.raises(ValueError, match="rank 5 does not fit a 4→8 layer"):
        LoRALinear(nn.Linear(4, 8), rank=5, alpha=1)


def test_extract_and_replace_are_inverses(tiny_models):
    from loralab.models import load_classifier

    model = load_classifier(str(tiny_models["distilbert"]), LABELS).model.eval()
    with torch.inference_mode():
        before = model(input_ids=IDS, attention_mask=MASK).logits
    layers = extract(model, ["q_lin", "v_lin"])
    assert sorted(layers) == sorted(
        f"distilbert.transformer.layer.{i}.attention.{p}" for i in range(2) for p in ("q_lin", "v_lin")
    )
    clones = {name: nn.Linear(layer.in_features, layer.out_features) for name, layer in layers.items()}
    replace(model, clones)
    with torch.inference_mode():
        changed = model(input_ids=IDS, attention_mask=MASK).logits
    replace(model, layers)
    with torch.inference_mode():
        restored = model(input_ids=IDS, attention_mask=MASK).logits
    assert not torch.allclose(before, changed)
    torch.testing.assert_close(restored, before)


def test_seed_002_counts_on_default_distilbert(tmp_path_factory):
    from transformers import DistilBertConfig

    from loralab.methods.inspect import parameter_table
    from loralab.models import load_classifier
    from tests.conftest import build_base_model

    folder = build_base_model(tmp_path_factory.mktemp("distilbert"), config=DistilBertConfig())
    model = load_classifier(str(folder), LABELS).model
    layers = extract(model, ["q_lin", "v_lin"])
    assert sum(num_trainable_parameters(layer) for layer in layers.values()) == 7_087_104
    config = TrainConfig(model=str(folder), target_modules=["q_lin", "v_lin"])
    for rank, expected in ((12, 813_314), (6, 702_722)):
        rows = parameter_table(
            config.replace(lora_rank=rank, lora_alpha=2 * rank), LABELS, methods=("lora-scratch", "lora")
        )
        assert [r["trainable"] for r in rows] == [expected, expected]


@pytest.mark.parametrize(
    "family, rslora", [("bert", False), ("distilbert", False), ("roberta", False), ("bert", True)]
)
def test_same_adapter_values_give_the_same_logits_as_peft(tiny_models, family, rslora):
    config = TrainConfig(
        model=str(tiny_models[family]), lora_rank=4, lora_alpha=8, lora_dropout=0.0, use_rslora=rslora
    )
    torch.manual_seed(0)
    peft_model = get_method("lora").build(LABELS, config).model
    torch.manual_seed(0)
    scratch_model = get_method("lora-scratch").build(LABELS, config).model
    scratch_params = dict(scratch_model.named_parameters())
    peft_trainable = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
    assert sum(p.numel() for p in peft_trainable.values()) == num_trainable_parameters(scratch_model)
    with torch.no_grad():
        for name, param in peft_trainable.items():
            param.normal_()  # non-zero B so the adapters matter
            plain = (
                name.removeprefix("base_model.model.").replace(".default", "").replace(".modules_to_save", "")
            )
            plain = plain.replace("lora_A.weight", "lora_A").replace("lora_B.weight", "lora_B")
            scratch_params[plain].copy_(param)
    peft_model.eval()
    scratch_model.eval()
    with torch.inference_mode():
        expected = peft_model(input_ids=IDS, attention_mask=MASK).logits
        got = scratch_model(input_ids=IDS, attention_mask=MASK).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_scratch_and_peft_train_to_the_same_accuracy(tiny_bert, synthetic_dir, tmp_path):
    # The query/value preset: A is drawn from the same distribution by both backends, not the
    # same values, and on this tiny task at this learning rate more adapted layers make the
    # outcome of 8 epochs hinge on those draws.
    common = dict(
        model=str(tiny_bert),
        epochs=8,
        lr=2e-2,
        batch_size=16,
        lora_dropout=0.0,
        seed=5,
        target_modules=["preset"],
    )
    peft = train_run(synthetic_dir, TrainConfig(method="lora", **common), tmp_path / "peft", progress=False)
    scratch = train_run(
        synthetic_dir, TrainConfig(method="lora-scratch", **common), tmp_path / "s", progress=False
    )
    # Same data order, same head initialisation, A drawn from the same distribution.
    peft_acc, scratch_acc = peft.metrics["test"]["accuracy"], scratch.metrics["test"]["accuracy"]
    assert peft_acc >= 0.75 and scratch_acc >= 0.75 and abs(peft_acc - scratch_acc) <= 0.15
    losses = [
        float(open(run.folder / "history.csv").read().splitlines()[1].split(",")[1])
        for run in (peft, scratch)
    ]
    assert abs(losses[0] - losses[1]) < 0.01
    assert peft.manifest["trainable_parameters"] == scratch.manifest["trainable_parameters"]
    texts = ["the film was good", "a dull plot"]
    np.testing.assert_array_equal(
        load_run(tmp_path / "s").predict_proba(texts), scratch.classifier.predict_proba(texts)
    )


def test_bias_options(tiny_bert):
    for bias, extra in (("none", 0), ("lora_only", 4 * 32), ("all", None)):
        config = TrainConfig(
            model=str(tiny_bert), lora_rank=2, lora_bias=bias, target_modules=["query", "value"]
        )
        model = get_method("lora-scratch").build(LABELS, config).model
        trainable_biases = [n for n, p in model.named_parameters() if p.requires_grad and n.endswith("bias")]
        adapter_biases = sum(model.get_parameter(n).numel() for n in trainable_biases if "base_layer" in n)
        if extra is not None:
            assert adapter_biases == extra
        else:
            assert len(trainable_biases) > 4


def test_rslora_scales_by_the_square_root_of_the_rank():
    layer = LoRALinear(nn.Linear(32, 32), rank=16, alpha=8, use_rslora=True)
    assert layer.scaling == pytest.approx(2.0)


def test_loraplus_gives_the_b_matrices_a_higher_learning_rate(tiny_bert):
    from loralab.training.loop import param_groups

    config = TrainConfig(model=str(tiny_bert), lora_rank=2)
    model = get_method("lora-scratch").build(LABELS, config).model
    groups = param_groups(model, 0.01, lr=1e-3, loraplus_lr_ratio=16)
    by_lr = {}
    for group in groups:
        by_lr.setdefault(group["lr"], set()).update(id(p) for p in group["params"])
    b_params = {id(p) for n, p in model.named_parameters() if "lora_B" in n}
    assert by_lr[0.016] == b_params
    assert all(lr == 1e-3 for lr in by_lr if lr != 0.016)


def test_dora_trains_and_reloads_through_peft(tiny_bert, synthetic_dir, tmp_path):
    config = TrainConfig(method="lora", model=str(tiny_bert), use_dora=True, epochs=1, lr=5e-3)
    result = train_run(synthetic_dir, config, tmp_path / "dora", progress=False)
    assert result.manifest["reload_max_difference"] <= 1e-5
    names = [n for n, _ in result.classifier.model.named_parameters()]
    assert any("lora_magnitude_vector" in n for n in names)


def test_dora_is_refused_by_the_scratch_backend(synthetic_dir, tmp_path):
    from loralab.errors import LoralabError

    with pytest.raises(LoralabError, match="--use-dora is available with --method lora"):
        train_run(
            synthetic_dir, TrainConfig(method="lora-scratch", use_dora=True), tmp_path / "x", progress=False
        )


def test_merging_twice_or_unmerging_an_unmerged_layer_is_refused():
    layer = LoRALinear(nn.Linear(8, 8), rank=2, alpha=4)
    with pytest.raises(ValueError, match="not merged"):
        layer.unmerge()
    layer.merge()
    with pytest.raises(ValueError, match="already merged"):
        layer.merge()


def test_pissa_starts_from_the_principal_directions_and_leaves_the_layer_unchanged():
    torch.manual_seed(0)
    base = nn.Linear(12, 10)
    original = base.weight.detach().clone()
    x = torch.randn(4, 12)
    expected = base(x)
    layer = LoRALinear(base, rank=3, alpha=6, init="pissa")
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    u, s, vh = torch.linalg.svd(original)
    top = (u[:, :3] * s[:3]) @ vh[:3]
    torch.testing.assert_close(layer.delta_weight(), top, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.base_layer.weight, original - top, atol=1e-5, rtol=1e-5)
    # After training, the plain-LoRA form applied to the original weight gives the same layer.
    with torch.no_grad():
        layer.lora_A.add_(torch.randn_like(layer.lora_A) * 0.1)
        layer.lora_B.add_(torch.randn_like(layer.lora_B) * 0.1)
    a, b = layer.plain_lora()
    assert a.shape == (6, 12) and b.shape == (10, 6)
    plain = nn.functional.linear(x, original + layer.scaling * (b @ a), base.bias)
    torch.testing.assert_close(plain, layer(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", ["lora", "lora-scratch"])
def test_pissa_runs_are_saved_as_plain_lora_of_the_unmodified_base(
    method, tiny_bert, synthetic_dir, tmp_path
):
    config = TrainConfig(
        method=method, model=str(tiny_bert), lora_init="pissa", lora_rank=4, epochs=1, lr=5e-3
    )
    result = train_run(synthetic_dir, config, tmp_path / "pissa", progress=False)
    assert result.manifest["reload_max_difference"] <= 1e-5
    if method == "lora":
        import json

        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification

        folder = tmp_path / "pissa" / "model"
        saved = json.loads((folder / "adapter_config.json").read_text())
        assert saved["r"] == 8 and saved["init_lora_weights"] is True
        base = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
        plain = PeftModel.from_pretrained(base, folder).eval()
        tokens = result.classifier.tokenizer(
            ["the film was good", "a dull plot"], return_tensors="pt", padding=True
        )
        with torch.inference_mode():
            probs = plain(**tokens).logits.softmax(-1).numpy()
        np.testing.assert_allclose(
            probs, result.classifier.predict_proba(["the film was good", "a dull plot"]), atol=1e-5
        )


def test_pissa_and_dora_together_are_refused():
    from loralab.errors import LoralabError

    with pytest.raises(LoralabError, match="pissa and --use-dora cannot be combined"):
        TrainConfig(lora_init="pissa", use_dora=True)


def test_an_adapter_file_of_the_wrong_shape_names_the_tensor(tiny_bert, synthetic_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from loralab.errors import RunError

    config = TrainConfig(method="lora-scratch", model=str(tiny_bert), lora_rank=2, epochs=1)
    train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    path = tmp_path / "run" / "model" / "adapter.safetensors"
    state = load_file(str(path))
    name = sorted(k for k in state if k.endswith("lora_A"))[0]
    state[name] = torch.zeros(3, state[name].shape[1])
    save_file(state, str(path))
    with pytest.raises(RunError, match="adapter.safetensors: has .* bytes where the run saved"):
        load_run(tmp_path / "run")
    # A run saved before file sizes were recorded: the loader itself names the tensor.
    manifest_path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["model_files"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(RunError, match=rf"tensor {name} has shape \(3, 32\)"):
        load_run(tmp_path / "run")


@pytest.mark.parametrize("method", ["lora", "lora-scratch"])
def test_lora_adapts_every_linear_layer_by_default_and_the_family_preset_on_request(tiny_bert, method):
    from loralab.models.targets import linear_modules

    def adapted_layers(**settings) -> set[str]:
        config = TrainConfig(model=str(tiny_bert), lora_rank=2, **settings)
        model = get_method(method).build(LABELS, config).model
        return {
            n.split(".lora_A")[0] for n, p in model.named_parameters() if p.requires_grad and ".lora_A" in n
        }

    def short(names: set[str]) -> set[str]:
        return {n.removeprefix("base_model.model.").rsplit(".", 1)[-1] for n in names}

    plain = get_method("head").build(LABELS, TrainConfig(model=str(tiny_bert))).model
    encoder_linears = {n for n in linear_modules(plain, ["classifier", "pooler"])}
    default = adapted_layers()
    assert len(default) == len(encoder_linears)  # attention and feed-forward of every layer
    assert short(default) == {"query", "key", "value", "dense"}
    assert short(adapted_layers(target_modules=["preset"])) == {"query", "value"}
