"""The method registry: traits instead of names."""

from __future__ import annotations

import pytest

from loralab.config import TrainConfig
from loralab.errors import LoralabError
from loralab.methods import default_ladder, get_method, method_names, untrained_method
from loralab.methods.base import Classifier, Method


def test_default_ladder_runs_cheapest_first_and_only_registered_methods():
    ladder = default_ladder()
    assert ladder == [
        "majority", "tfidf-logreg", "tfidf-nb", "embed-logreg", "untrained", "head", "setfit", "lora", "full"
    ]  # fmt: skip
    assert set(ladder) <= set(method_names())


def test_traits_agree_with_what_each_method_does():
    for name in method_names():
        method = get_method(name)
        if method.trains_adapters:
            assert method.supports_lora_layers and method.has_weight_update and method.lora_based, name
        if method.untrained:
            assert not method.trains_in_epochs and not method.has_weight_update, name
        assert method.uses_encoder is not None, f"{name} does not say whether it runs the encoder"
        if method.trains_in_epochs or method.untrained:
            assert method.uses_encoder, name
    assert untrained_method().name == "untrained"
    with_layers = ["lora", "lora-scratch", "setfit-lora"]
    assert sorted(n for n in method_names() if get_method(n).supports_lora_layers) == with_layers
    assert sorted(n for n in method_names() if get_method(n).lora_based) == with_layers


def test_lora_layers_on_a_method_without_them_is_one_sentence():
    message = r"^--lora-layers applies to --method lora or lora-scratch or setfit-lora, not head\.$"
    with pytest.raises(LoralabError, match=message):
        get_method("head").check(TrainConfig(method="head", lora_layers=1))


class _NeedsAnExtra(Method):
    name = "needs-extra"
    summary = "a method whose extra is not installed"
    extra = "missing"
    extra_module = "loralab_module_that_is_not_installed"

    def load(self, folder, info) -> Classifier:
        raise NotImplementedError


def test_a_method_whose_extra_is_missing_names_the_extra():
    with pytest.raises(LoralabError, match=r"needs the missing extra.*pip install 'loralab\[missing\]'"):
        _NeedsAnExtra().check(TrainConfig())
