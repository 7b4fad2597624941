"""Training precision: auto picks bf16 only where it is measured faster; models stay fp32."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from loralab.config import TrainConfig
from loralab.errors import LoralabError
from loralab.runs.predict import load_for_prediction
from loralab.runs.train import load_run, train_run
from loralab.training import precision as precision_module
from loralab.training.precision import resolve_precision

CPU = torch.device("cpu")
has_bf16 = pytest.mark.skipif(not precision_module.cpu_has_bf16(), reason="this CPU has no bf16 instructions")


@pytest.mark.parametrize(("speedup", "expected"), [(3.0, "bf16"), (1.1, "fp32"), (0.0, "fp32")])
def test_auto_takes_bf16_on_a_cpu_only_when_it_is_faster(speedup, expected, monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_bf16_speedup", lambda: speedup)
    assert resolve_precision("auto", CPU) == expected
    assert resolve_precision("fp32", CPU) == "fp32"


def test_precision_mistakes_are_one_sentence(monkeypatch):
    with pytest.raises(LoralabError, match="--precision fp16 needs a CUDA GPU; this run is on cpu"):
        resolve_precision("fp16", CPU)
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: False)
    with pytest.raises(LoralabError, match="this CPU has no bf16 instructions"):
        resolve_precision("bf16", CPU)
    with pytest.raises(LoralabError, match="--precision must be one of auto, fp32, bf16, fp16; got 'fp8'"):
        TrainConfig(precision="fp8")


def test_measured_speedup_is_a_ratio_of_timings():
    speedup = precision_module.cpu_bf16_speedup()
    assert speedup == 0.0 if not precision_module.cpu_has_bf16() else speedup > 0


@has_bf16
@pytest.mark.parametrize("method", ["lora", "full"])
def test_bf16_trains_in_bf16_and_keeps_an_fp32_model(method, tiny_bert, synthetic_dir, tmp_path):
    seen: list[torch.dtype] = []

    def record(module, inputs, output):
        seen.append(output.dtype)

    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, i, o: record(module, i, o) if isinstance(module, torch.nn.Linear) else None
    )
    try:
        config = TrainConfig(method=method, model=str(tiny_bert), epochs=1, lr=5e-3, precision="bf16")
        run = train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    finally:
        hook.remove()
    assert torch.bfloat16 in seen  # the training forward ran under autocast ...
    assert torch.float32 in seen  # ... and evaluation did not
    manifest = json.loads((run.folder / "manifest.json").read_text())
    assert manifest["resolved"]["precision"] == "bf16"
    reloaded = load_run(run.folder)
    assert all(p.dtype == torch.float32 for p in reloaded.model.parameters())
    texts = ["a good film", "a dull plot", "good good", "bad bad bad"]
    in_process = run.classifier.predict_proba(texts)
    np.testing.assert_allclose(reloaded.predict_proba(texts), in_process, atol=1e-5)


@pytest.fixture
def fp32_run(tiny_bert, synthetic_dir, tmp_path):
    config = TrainConfig(method="lora", model=str(tiny_bert), epochs=1, lr=5e-3, precision="fp32")
    return train_run(synthetic_dir, config, tmp_path / "run", progress=False)


def test_fp32_run_records_its_precision(fp32_run):
    assert json.loads((fp32_run.folder / "manifest.json").read_text())["resolved"]["precision"] == "fp32"


def test_prediction_is_fp32_unless_asked(fp32_run):
    texts = ["a good film", "a dull plot", "good good", "bad bad bad"]
    classifier = load_for_prediction(fp32_run.folder)
    assert classifier.precision == "fp32"
    expected = fp32_run.classifier.predict_proba(texts)
    np.testing.assert_allclose(classifier.predict_proba(texts), expected, atol=1e-5)


@has_bf16
def test_bf16_prediction_multiplies_in_bf16_and_stays_close(fp32_run):
    texts = ["a good film", "a dull plot", "good good", "bad bad bad"] * 8
    classifier = load_for_prediction(fp32_run.folder, precision="bf16")
    seen: list[torch.dtype] = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, i, o: seen.append(o.dtype) if isinstance(module, torch.nn.Linear) else None
    )
    try:
        fast = classifier.predict_proba(texts)
    finally:
        hook.remove()
    assert classifier.precision == "bf16" and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in classifier.model.parameters())
    np.testing.assert_allclose(fast, load_for_prediction(fp32_run.folder).predict_proba(texts), atol=0.02)


def test_prediction_precision_mistakes_are_one_sentence(fp32_run, synthetic_dir, tmp_path):
    with pytest.raises(LoralabError, match="--precision goes with --backend torch"):
        load_for_prediction(fp32_run.folder, "onnx", precision="bf16")
    config = TrainConfig(method="tfidf-logreg")
    baseline = train_run(synthetic_dir, config, tmp_path / "tfidf", progress=False)
    with pytest.raises(LoralabError, match="is a 'tfidf-logreg' run, which predicts in full precision"):
        load_for_prediction(baseline.folder, precision="bf16")


@pytest.fixture
def fresh_accelerate_state():
    """An uninitialised Accelerate state for the test, and the process's own one back after it
    (Accelerate's state is a process-wide singleton; only a test may take it apart)."""
    from accelerate.state import AcceleratorState, PartialState

    saved = dict(AcceleratorState._shared_state), dict(PartialState._shared_state)
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    AcceleratorState._shared_state.update(saved[0])
    PartialState._shared_state.update(saved[1])


def test_another_mixed_precision_in_the_same_process_is_one_sentence(fresh_accelerate_state):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from loralab.training.loop import _accelerator

    Accelerator(mixed_precision="bf16", cpu=True)  # as a script using Accelerate may leave it
    with pytest.raises(LoralabError, match="--precision fp32: .* keeps one setting per process"):
        _accelerator("fp32", cpu=True)
    assert AcceleratorState().mixed_precision == "bf16"  # nothing was reset behind the caller's back
