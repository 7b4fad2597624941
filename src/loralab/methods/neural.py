"""Methods that adapt a transformer encoder: the classifier they make, and what they share.

:class:`NeuralMethod` loads the encoder with its head, lets the method choose what trains
(``prepare``) and what the loop reads (``training_data``), and saves what the method owns
(``save_weights`` / ``load_weights``); the loop itself is :mod:`loralab.training`'s, one layer
up. Loaded for prediction, a run's adapters are merged into the weights first and the
prediction fast paths are entered and verified on the merged model, once.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoTokenizer

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.data.long_text import TextInput
from loralab.errors import RunError
from loralab.methods.base import Classifier, Method
from loralab.methods.steps import Schedule, floored_schedule
from loralab.models.inference import predict_logits, softmax
from loralab.models.loading import LoadedModel, count_parameters, load_classifier
from loralab.models.speedups import prediction_fast_paths


def load_weights_file(model: nn.Module, path: Path, model_name: str) -> nn.Module:
    """Copy the tensors of a safetensors file into ``model``'s parameters of the same names."""
    state = load_file(str(path))
    params = dict(model.named_parameters())
    absent = sorted(set(state) - set(params))
    if absent:
        raise RunError(f"{path}: weights {', '.join(absent[:3])} do not fit model {model_name}.")
    for name, value in state.items():
        if tuple(value.shape) != tuple(params[name].shape):
            raise RunError(
                f"{path}: tensor {name} has shape {tuple(value.shape)} but model {model_name} "
                f"expects {tuple(params[name].shape)}."
            )
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)
    return model


_THREAD_COUNT = threading.Lock()


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread for the length of a ``with`` block, for work too small to share:
    merging MiniLM's adapters is a few MFLOP, and on a loaded 2-core machine two threads waiting
    for each other made it take 3.0 s against 0.05 s on one."""
    # The thread count is the process's: two loads at once (a server's threads) take turns, so
    # that neither saves the other's 1 as the count to restore.
    with _THREAD_COUNT:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


class TransformerClassifier(Classifier):
    """An encoder with a classification head, possibly wrapped by PEFT."""

    mixed_precision = True

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        labels: list[str],
        method: str,
        config: TrainConfig,
        head_modules: list[str],
        owner: NeuralMethod,
    ) -> None:
        self.model: Any = model  # a transformers model, possibly wrapped by PEFT
        self.tokenizer = tokenizer
        self.labels = labels
        self.method = method
        self.config = config
        self.head_modules = head_modules
        self.owner = owner
        self.precision = "fp32"  # of prediction; loralab.runs.predict.load_for_prediction sets it

    def predict_logits(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return predict_logits(
            self.model,
            self.tokenizer,
            texts,
            TextInput.of(self.config),
            batch_size or self.config.eval_batch_size,
            precision=self.precision,
        )

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return softmax(self.predict_logits(texts, batch_size))

    def parameter_counts(self) -> tuple[int, int]:
        return count_parameters(self.model)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.owner.save_weights(self, folder)
        self.tokenizer.save_pretrained(folder)
        self._write_info(folder, {"head_modules": self.head_modules})


@dataclass
class Prepared:
    """A model ready to train: the loaded base (tokenizer, head modules) and the model the
    method made of it, with its trainable set chosen (possibly wrapped, e.g. by PEFT)."""

    loaded: LoadedModel
    model: nn.Module

    @property
    def tokenizer(self) -> Any:  # a transformers tokenizer of whichever class the model uses
        return self.loaded.tokenizer

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else 0


@dataclass
class TrainingData:
    """What the training loop reads: token ids with class ids, and the context to train in.

    A method that caches what frozen layers compute hands over row indices in place of token
    ids and a ``context`` that swaps the cache in for the frozen layers while the loop runs.
    """

    train_ids: list[list[int]]
    train_labels: list[int]
    validation: tuple[list[list[int]], list[int]] | None
    pad_id: int
    context: AbstractContextManager = field(default_factory=nullcontext)
    cache_seconds: float = 0.0
    # Checkpoints hold the model's weights; a run served from a cache of frozen outputs
    # finishes in seconds, so it does not checkpoint.
    checkpointable: bool = True


class NeuralMethod(Method):
    """Methods that adapt a transformer encoder: they load it with its head, choose what
    trains (:meth:`prepare`), say what the loop trains on (:meth:`training_data`), and save
    and load what they own (:meth:`save_weights` / :meth:`load_weights`)."""

    seeded = True
    trains_in_epochs = True
    has_weight_update = True
    uses_encoder = True
    reads_long_text = True
    single_file_export = True

    @abstractmethod
    def prepare(self, loaded: LoadedModel, config: TrainConfig) -> nn.Module:
        """Choose what trains (and wrap the model if needed); return the model to train."""

    @abstractmethod
    def save_weights(self, classifier: TransformerClassifier, folder: Path) -> None: ...

    @abstractmethod
    def load_weights(self, labels: list[str], folder: Path, config: TrainConfig) -> nn.Module:
        """Rebuild the trained model from ``folder`` (frozen, in eval mode)."""

    def base(self, labels: list[str], config: TrainConfig) -> LoadedModel:
        return load_classifier(config.model, labels, trust_remote_code=config.trust_remote_code)

    def resolved(self, config: TrainConfig) -> tuple[float, int, int]:
        """Learning rate, epochs and batch size: the config's, or this method's defaults."""
        return (
            config.lr or self.default_lr,
            config.epochs or self.default_epochs,
            config.batch_size or self.default_batch_size,
        )

    def step_floor(self, train_texts: int, config: TrainConfig, batch_size: int) -> Schedule | None:
        """The default epochs, raised so training takes at least ``config.min_train_steps``
        optimizer steps (see :mod:`loralab.methods.steps`); ``None`` when ``--epochs`` is given,
        since the user's own epochs are kept as given."""
        if config.epochs is not None:
            return None
        return floored_schedule(
            train_texts,
            batch_size,
            self.default_epochs,
            config.min_train_steps,
            config.grad_accum_steps,
            config.patience,
        )

    def planned(self, train_texts: int, config: TrainConfig) -> tuple[float, int, int, Schedule | None]:
        """Learning rate, epochs and batch size that training on ``train_texts`` texts will use
        (``config`` settled), with the step floor's schedule when it sets the epochs. What
        :func:`loralab.training.fit.fit` trains with, and what a progress display counts to."""
        lr, epochs, batch_size = self.resolved(config)
        schedule = self.step_floor(train_texts, config, batch_size)
        return lr, schedule.epochs if schedule is not None else epochs, batch_size, schedule

    def fit_details(self, config: TrainConfig) -> dict[str, Any]:
        """Facts of this method's training for the run manifest, beyond :class:`FitResult`'s."""
        return {}

    def build(self, labels: list[str], config: TrainConfig) -> Prepared:
        config = self.settled(config)
        torch.manual_seed(config.seed)  # the new head's initialisation is part of the run
        loaded = self.base(labels, config)
        model = self.prepare(loaded, config)
        prediction_fast_paths(model, config)
        return Prepared(loaded, model)

    def classifier(self, prepared: Prepared, labels: list[str], config: TrainConfig) -> TransformerClassifier:
        loaded = prepared.loaded
        return TransformerClassifier(
            prepared.model, loaded.tokenizer, labels, self.name, config, loaded.head_modules, self
        )

    def training_data(
        self, prepared: Prepared, splits: DataSplits, config: TrainConfig, *, progress: bool = True
    ) -> TrainingData:
        """Token ids of the training and validation texts, encoded once (cut as the config's
        text input says; with ``train_on_chunks``, every window of a training text, with the
        text's label); methods that cache what frozen layers compute override this."""
        text_input = TextInput.of(config)
        label2id = splits.label2id
        validation = None
        if len(splits.validation):  # selection reads cut texts, also with chunks: one row per text
            validation = (
                text_input.encode(prepared.tokenizer, splits.validation.texts),
                [label2id[y] for y in splits.validation.labels],
            )
        labels = [label2id[y] for y in splits.train.labels]
        if config.train_on_chunks:
            train_ids, documents = text_input.encode_windows(prepared.tokenizer, splits.train.texts)
            labels = [labels[d] for d in documents]
        else:
            train_ids = text_input.encode(prepared.tokenizer, splits.train.texts)
        return TrainingData(train_ids, labels, validation, prepared.pad_id)

    def load(self, folder: Path, info: dict) -> Classifier:
        classifier = self._load_unchanged(folder, info)
        prediction_fast_paths(classifier.model, classifier.config)
        return classifier

    def load_for_prediction(self, folder: Path, info: dict) -> Classifier:
        """The saved model with its adapters merged into the weights (one matrix product per
        layer instead of three), the prediction fast paths entered and verified once, on the
        merged model that predicts, rather than on the PEFT wrapper that is merged away."""
        # deferred: a cycle — loralab.methods.merge imports the LoRA methods, which subclass NeuralMethod
        from loralab.methods.merge import merge_adapters

        classifier = self._load_unchanged(folder, info)
        with one_thread():
            classifier.model, _ = merge_adapters(classifier.model)
            classifier.model.eval()
            prediction_fast_paths(classifier.model, classifier.config)
        return classifier

    def _load_unchanged(self, folder: Path, info: dict) -> TransformerClassifier:
        """The model as it was saved (adapters apart, in eval mode), with no fast path entered."""
        config = TrainConfig.from_dict(info["config"], strict=False)
        labels = list(info["labels"])
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = self.load_weights(labels, folder, config)
        model.eval()
        return TransformerClassifier(
            model, tokenizer, labels, self.name, config, list(info.get("head_modules", [])), self
        )
