import pytest
import torch

from loralab.analysis.delta import effective_rank, energy, subspace_similarity, update_diagnostics
from loralab.analysis.lowrank import approximate, halving_ranks, lowrank_study
from loralab.config import TrainConfig
from loralab.errors import LoralabError
from loralab.runs.train import train_run


def test_rank_r_matrices_are_reproduced_and_error_falls_with_rank():
    torch.manual_seed(0)
    low = torch.randn(20, 3) @ torch.randn(3, 12)
    torch.testing.assert_close(approximate(low, 3), low, atol=1e-4, rtol=1e-4)
    full = torch.randn(20, 12)
    errors = [torch.linalg.norm(full - approximate(full, r)).item() for r in (1, 2, 4, 8, 12)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-4
    s = torch.linalg.svdvals(full)
    # Eckart–Young: the error of the best rank-r approximation is the norm of the dropped singular values
    assert errors[2] == pytest.approx(torch.linalg.norm(s[4:]).item(), rel=1e-4)


def test_halving_ranks():
    assert halving_ranks(32) == [32, 16, 8, 4, 2, 1]
    assert halving_ranks(6) == [6, 3, 1]


def test_study_on_a_fully_fine_tuned_run(tiny_bert, synthetic_dir, tmp_path):
    config = TrainConfig(method="full", model=str(tiny_bert), epochs=6, lr=3e-3, batch_size=16, seed=3)
    run = train_run(synthetic_dir, config, tmp_path / "full", progress=False)
    study = lowrank_study(run.folder, str(synthetic_dir))
    assert study["full_rank"] == 32 and len(study["layers"]) == 4
    by = {(r["version"], r["rank"]): r["accuracy"] for r in study["rows"]}
    # At full rank both versions are the fine-tuned model itself.
    assert by[(1, 32)] == by[(2, 32)] == study["fine_tuned_accuracy"]
    assert {r for _, r in by} == {32, 16, 8, 4, 2, 1}
    assert study["replace_test"]["restored"] == study["fine_tuned_accuracy"]


def test_study_refuses_other_methods(tiny_bert, synthetic_dir, tmp_path):
    config = TrainConfig(method="head", model=str(tiny_bert), epochs=1)
    run = train_run(synthetic_dir, config, tmp_path / "head", progress=False)
    with pytest.raises(LoralabError, match="needs a run that changes encoder weights"):
        lowrank_study(run.folder, str(synthetic_dir))


def test_lowrank_cli_writes_table_json_and_plot(tiny_bert, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from loralab.cli import app

    config = TrainConfig(method="full", model=str(tiny_bert), epochs=2, lr=3e-3, batch_size=16)
    run = train_run(synthetic_dir, config, tmp_path / "full", progress=False)
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, ["lowrank", str(run.folder), str(synthetic_dir), "--threads", "1"])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert "version 2" in result.output and (run.folder / "lowrank.png").exists()
    assert (run.folder / "lowrank.json").exists() and (run.folder / "delta_query.png").exists()
    assert "ΔW by layer type" in result.output
    from loralab.reports.report import write_report

    html, md = write_report(run.folder)
    assert "## Low-rank study" in md.read_text() and "## ΔW diagnostics" in md.read_text()
    assert "delta_value.png" in md.read_text() and (run.folder / "delta_value.png").exists()
    result = CliRunner().invoke(app, ["lowrank", str(run.folder), str(synthetic_dir), "--threads", "0"])
    assert result.exit_code == 2 and "--threads must be ≥ 1, got 0." in result.output


def test_effective_rank_and_energy_of_known_spectra():
    assert effective_rank(torch.tensor([3.0, 3.0, 3.0, 0.0])) == pytest.approx(3.0)
    assert effective_rank(torch.tensor([5.0, 0.0])) == pytest.approx(1.0)
    values = torch.tensor([3.0, 2.0, 1.0])
    assert energy(values, 1) == pytest.approx(9 / 14)
    assert energy(values, 3) == pytest.approx(1.0)


def test_subspace_similarity_is_one_for_shared_and_small_for_random_subspaces():
    torch.manual_seed(0)
    basis = torch.linalg.qr(torch.randn(256, 256))[0]
    a = basis[:, :4] @ torch.randn(4, 64)
    b = basis[:, :4] @ torch.randn(4, 64) * 7
    c = basis[:, 100:104] @ torch.randn(4, 64)
    assert subspace_similarity(a, b, 4) == pytest.approx(1.0, abs=1e-4)
    assert subspace_similarity(a, c, 4) == pytest.approx(0.0, abs=1e-4)
    # Random subspaces overlap by about i / d.
    assert subspace_similarity(torch.randn(256, 64), torch.randn(256, 64), 8) < 0.15
    with pytest.raises(ValueError, match="different output sizes"):
        subspace_similarity(torch.randn(5, 3), torch.randn(6, 3), 1)


def test_update_diagnostics_of_a_rank_two_update():
    torch.manual_seed(1)
    delta = torch.randn(16, 2) @ torch.randn(2, 24)
    (row,) = update_diagnostics(
        {"encoder.layer.0.query": delta}, rank=2, reference={"encoder.layer.0.query": delta}
    )
    assert row["type"] == "query" and row["energy"]["2"] == pytest.approx(1.0)
    assert row["effective_rank"] <= 2.0 and row["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert row["singular_values"][2] < 1e-4


@pytest.mark.parametrize("method", ["lora", "lora-scratch"])
def test_merged_adapters_give_the_same_predictions(method, tiny_bert, synthetic_dir, tmp_path):
    from loralab.methods.merge import merge_adapters
    from loralab.runs.train import load_run

    config = TrainConfig(
        method=method, model=str(tiny_bert), epochs=1, lr=5e-3, lora_rank=2, target_modules=["preset"]
    )
    run = train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    classifier = load_run(run.folder)
    texts = ["the film was good", "a dull plot", "fine"]
    before = classifier.predict_proba(texts)
    classifier.model, names = merge_adapters(classifier.model)
    assert len(names) == 4 and all(n.endswith(("query", "value")) for n in names)
    assert not any("lora" in n for n, _ in classifier.model.named_parameters())
    torch.testing.assert_close(
        torch.tensor(classifier.predict_proba(texts)), torch.tensor(before), atol=1e-5, rtol=0
    )


def test_study_of_a_lora_run_against_a_full_run(tiny_bert, synthetic_dir, tmp_path):
    common = dict(model=str(tiny_bert), epochs=3, batch_size=16, seed=3)
    full = train_run(
        synthetic_dir, TrainConfig(method="full", lr=3e-3, **common), tmp_path / "f", progress=False
    )
    lora = train_run(
        synthetic_dir,
        TrainConfig(method="lora", lr=1e-2, lora_rank=4, **common),
        tmp_path / "l",
        progress=False,
    )
    study = lowrank_study(lora.folder, str(synthetic_dir), against=full.folder)
    assert study["method"] == "lora" and study["lora_rank"] == 4
    assert study["against"]["accuracy"] == full.metrics["test"]["accuracy"]
    by = {(r["version"], r["rank"]): r["accuracy"] for r in study["rows"]}
    # ΔW of a rank-4 adapter is reproduced exactly from rank 4 up.
    assert by[(2, 4)] == by[(2, 32)] == study["fine_tuned_accuracy"] == lora.metrics["test"]["accuracy"]
    for row in study["diagnostics"]:
        assert row["energy"]["4"] == pytest.approx(1.0, abs=1e-4)
        assert 0.0 <= row["similarity"] <= 1.0 + 1e-6


def test_runs_of_different_base_models_are_refused(tiny_models, synthetic_dir, tmp_path):
    runs = [
        train_run(
            synthetic_dir,
            TrainConfig(method="full", model=str(tiny_models[family]), epochs=1),
            tmp_path / family,
            progress=False,
        )
        for family in ("bert", "distilbert")
    ]
    with pytest.raises(LoralabError, match="adapt different base models"):
        lowrank_study(runs[0].folder, str(synthetic_dir), against=runs[1].folder)


def test_options_that_do_not_fit_the_runs_are_refused(tiny_bert, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from loralab.cli import app

    common = dict(model=str(tiny_bert), epochs=1, lora_rank=2, target_modules=["query", "value"])
    lora = train_run(synthetic_dir, TrainConfig(method="lora", **common), tmp_path / "lora", progress=False)
    with pytest.raises(
        LoralabError, match=r"this lora run changed only the layers its adapters target \(query, value\)"
    ):
        lowrank_study(lora.folder, str(synthetic_dir), targets=["key"])
    study = lowrank_study(lora.folder, str(synthetic_dir), split="validation", targets=["query", "value"])
    assert len(study["layers"]) == 4  # naming the adapted modules themselves is fine

    result = CliRunner().invoke(
        app, ["lowrank", str(lora.folder), str(synthetic_dir), "--head-run", str(lora.folder)]
    )
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"--head-run {lora.folder}: is a 'lora' run; the reference line is a head-tuned run" in message
    assert not (lora.folder / "lowrank.json").exists()


def test_a_study_on_the_runs_own_file_scores_the_split_training_carved(tiny_bert, tmp_path):
    # Scoring the whole file would mix the texts the model learned from into the study's figures.
    from tests.conftest import synthetic_frame

    data = tmp_path / "all.csv"
    synthetic_frame(200, 5).to_csv(data, index=False)
    config = TrainConfig(method="full", model=str(tiny_bert), epochs=1, batch_size=16)
    run = train_run(str(data), config, tmp_path / "full", progress=False)
    study = lowrank_study(run.folder, str(data))
    assert any("is the file this run was trained on" in note for note in study["notes"])
    assert "carved from train" in study["data"]
