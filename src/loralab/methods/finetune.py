"""Head tuning (encoder frozen) and full fine-tuning."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForSequenceClassification

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.data.long_text import TextInput
from loralab.errors import RunError
from loralab.methods.base import FitResult, register
from loralab.methods.frozen import cache_encoder_outputs, swapped_encoder
from loralab.methods.neural import (
    NeuralMethod,
    Prepared,
    TrainingData,
    TransformerClassifier,
    load_weights_file,
)
from loralab.models.loading import LoadedModel, quiet_transformers
from loralab.models.pooling import choose_pooling, read_pooled_sentences

HEAD_FILE = "head.safetensors"


def _in_head(name: str, head_modules: list[str]) -> bool:
    return any(name == h or name.startswith(h + ".") for h in head_modules)


@register
class HeadTuning(NeuralMethod):
    """Freeze the encoder; train only the classification head (seed 002 task 2).

    For a sentence-transformers model whose pooling is not the first token (all-MiniLM-L6-v2
    pools the mean), the head reads that pooled sentence vector (``--pooling``, auto by
    default); other models keep the head's own input, so their figures are unchanged."""

    name = "head"
    summary = "encoder frozen, only the classification head trains"
    ladder_position = 40
    has_weight_update = False  # the encoder is untouched; only a new head is learned
    cost_rank = 3
    default_lr = 2e-3
    default_epochs = 10

    def prepare(self, loaded: LoadedModel, config: TrainConfig) -> nn.Module:
        read_pooled_sentences(loaded.model, choose_pooling(config.model, config.pooling))
        for name, param in loaded.model.named_parameters():
            param.requires_grad = _in_head(name, loaded.head_modules)
        return loaded.model

    def fit_details(self, config: TrainConfig) -> dict:
        choice = choose_pooling(config.model, config.pooling)
        if choice.sentence_transformer and choice.pooling != "cls":
            return {"pooling": {"pooling": choice.pooling, "source": choice.source}}
        return {}

    def training_data(
        self, prepared: Prepared, splits: DataSplits, config: TrainConfig, *, progress: bool = True
    ) -> TrainingData:
        """Encode train and validation texts once; the head then trains on the cached outputs."""
        texts = splits.train.texts + splits.validation.texts
        stand_in = None
        if not config.train_on_chunks:  # the cache holds one row per text, not per window
            stand_in = cache_encoder_outputs(
                prepared.model,
                prepared.tokenizer,
                texts,
                TextInput.of(config),
                config.eval_batch_size,
                progress,
            )
        if stand_in is None:  # this head reads more than the first token: train through the encoder
            return super().training_data(prepared, splits, config, progress=progress)
        label2id = splits.label2id
        n_train = len(splits.train)
        validation = None
        if len(splits.validation):
            validation = (
                [[n_train + i] for i in range(len(splits.validation))],
                [label2id[y] for y in splits.validation.labels],
            )
        return TrainingData(
            [[i] for i in range(n_train)],
            [label2id[y] for y in splits.train.labels],
            validation,
            0,
            context=swapped_encoder(prepared.model, stand_in),
            checkpointable=False,
        )

    def save_weights(self, classifier: TransformerClassifier, folder: Path) -> None:
        state = {
            n: p.detach().contiguous()
            for n, p in classifier.model.named_parameters()
            if _in_head(n, classifier.head_modules)
        }
        save_file(state, str(folder / HEAD_FILE))

    def load_weights(self, labels: list[str], folder: Path, config: TrainConfig) -> nn.Module:
        if not (folder / HEAD_FILE).exists():
            raise RunError(f"{folder}: the saved head {HEAD_FILE} is missing.")
        loaded = self.base(labels, config)
        read_pooled_sentences(loaded.model, choose_pooling(config.model, config.pooling))
        load_weights_file(loaded.model, folder / HEAD_FILE, config.model)
        for param in loaded.model.parameters():
            param.requires_grad = False
        return loaded.model


@register
class FullFineTuning(NeuralMethod):
    """Every weight of encoder and head trains."""

    name = "full"
    summary = "all weights train"
    ladder_position = 60
    cost_rank = 6
    default_lr = 5e-5
    default_epochs = 3
    # Measured on rotten_tomatoes with MiniLM-L6: batch 16 reached 0.834 test accuracy, batch 32 0.828.
    default_batch_size = 16

    def prepare(self, loaded: LoadedModel, config: TrainConfig) -> nn.Module:
        for param in loaded.model.parameters():
            param.requires_grad = True
        return loaded.model

    def save_weights(self, classifier: TransformerClassifier, folder: Path) -> None:
        classifier.model.save_pretrained(folder)

    def load_weights(self, labels: list[str], folder: Path, config: TrainConfig) -> nn.Module:
        quiet_transformers()
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, trust_remote_code=config.trust_remote_code
        )
        for param in model.parameters():
            param.requires_grad = False
        return model


@register
class Untrained(HeadTuning):
    """The pretrained encoder with its freshly initialised, untrained head (seed 003's "before").

    It answers "what does adaptation buy?": any trained method should beat it by a margin.
    Its predictions are those of a random head, about chance; it is not zero-shot
    classification (which would use the label names), hence the name.
    """

    name = "untrained"
    summary = "no training: the pretrained encoder with an untrained head"
    aliases = {
        "zero-shot": "the pretrained encoder with a random, untrained head (the 'before' of a "
        "before/after), not zero-shot classification."
    }
    cost_rank = 2
    reference = True

    # The untrained head is a reference point: one draw of it is enough for a comparison.
    seeded = False
    trains_in_epochs = False
    untrained = True
    ladder_position = 30

    def fit(self, splits: DataSplits, config: TrainConfig, *, progress: bool = True) -> FitResult:
        prepared = self.build(splits.labels, config)
        for param in prepared.model.parameters():
            param.requires_grad = False
        prepared.model.eval()
        return FitResult(
            self.classifier(prepared, splits.labels, config),
            train_tokens=0,
            epochs=0,
            head_modules=prepared.loaded.head_modules,
            newly_initialised=prepared.loaded.newly_initialised,
            details=self.fit_details(config),  # the pooling its head reads, as head runs record it
        )
