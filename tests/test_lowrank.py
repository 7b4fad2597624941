import pytest
import torch

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
    with pytest.raises(LoralabError, match="needs a fully fine-tuned run"):
        lowrank_study(run.folder, str(synthetic_dir))


def test_lowrank_cli_writes_table_json_and_plot(tiny_bert, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from loralab.cli import app

    config = TrainConfig(method="full", model=str(tiny_bert), epochs=2, lr=3e-3, batch_size=16)
    run = train_run(synthetic_dir, config, tmp_path / "full", progress=False)
    result = CliRunner().invoke(app, ["lowrank", str(run.folder), str(synthetic_dir)])
    assert result.exit_code == 0, result.output
    assert "version 2" in result.output and (run.folder / "lowrank.png").exists()
    assert (run.folder / "lowrank.json").exists()
