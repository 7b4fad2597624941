import pytest

from loralab.config import TrainConfig
from loralab.errors import LoralabError


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("lora_rank", 0, "--lora-rank must be a positive integer"),
        ("lora_rank", -3, "--lora-rank must be a positive integer"),
        ("lr", -1.0, "--lr must be positive"),
        ("batch_size", 0, "--batch-size"),
        ("lora_dropout", 1.0, "--lora-dropout"),
        ("lora_bias", "some", "--lora-bias must be one of none, all, lora_only"),
        ("max_length", 2, "--max-length"),
    ],
)
def test_invalid_values_raise_one_sentence(field, value, fragment):
    with pytest.raises(LoralabError, match=fragment):
        TrainConfig(**{field: value})


def test_round_trip_through_dict():
    config = TrainConfig(method="full", lr=3e-5, target_modules="query, value")
    assert config.target_modules == ["query", "value"]
    data = config.to_dict()
    assert data["config_version"] == 1
    assert TrainConfig.from_dict(data) == config


def test_unknown_keys_are_errors_from_users_and_warnings_from_saved_runs():
    with pytest.raises(LoralabError, match="lora_rnak.*did you mean 'lora_rank'"):
        TrainConfig.from_dict({"lora_rnak": 4})
    with pytest.warns(UserWarning, match="future_key"):
        config = TrainConfig.from_dict({"lora_rank": 4, "future_key": 1}, strict=False)
    assert config.lora_rank == 4
