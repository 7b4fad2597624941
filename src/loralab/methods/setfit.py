"""SetFit (Tunstall et al., 2022, "Efficient Few-Shot Learning Without Prompts"), through the
``setfit`` library: the sentence-transformer body is fine-tuned contrastively on pairs of
training texts (same class: similar, different classes: dissimilar), then a logistic
regression is fitted on its embeddings of every training text. It is meant for 8–64 labelled
texts per class (the paper's few-shot settings): each text takes part in many pairs.

Cost is bounded: ``ITERATIONS`` (the paper's 20) positive and negative pairs per text, at most
``--setfit-max-pairs`` pairs in all (2,000 by default: 125 optimizer steps of 16 pairs, whatever
the size of the data). A step of 16 pairs of rotten_tomatoes snippets (32 sentences of up to 54
tokens through all-MiniLM-L6-v2, forward and backward) measured 7.5 s of CPU time on this
project's 2-core machine under heavy shared load: the default budget is at most about 16 CPU
minutes there, whatever the data. ``setfit`` lists every pair of texts before drawing from them
(memory grows with the square of the texts), so the contrastive phase reads a stratified sample
of at most half as many texts as pairs; the logistic regression still sees every training text.

Saved without pickle (``setfit`` itself would write the head with joblib): the body in
sentence-transformers format (safetensors) under ``body/``, the head's arrays in
``head.safetensors``.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.errors import LoralabError, RunError
from loralab.methods.base import Classifier, FitResult, Method, register
from loralab.models.loading import quiet_transformers, resolve_model
from loralab.models.pooling import ST_DEFAULT_POOLING_DIR, ST_MODULES, choose_pooling

ITERATIONS = 20  # positive and negative pairs drawn per training text, as in the SetFit paper
BODY_DIR = "body"
HEAD_FILE = "head.safetensors"


def _setfit():
    try:
        # optional extra: setfit
        import setfit
    except ImportError as err:
        raise LoralabError(
            "--method setfit needs the setfit extra, which is not installed: pip install 'loralab[setfit]'."
        ) from err
    # optional extra: setfit (datasets comes with it)
    import datasets

    quiet_transformers()
    setfit.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    return setfit


def _quiet_trainer_logs(trainer, progress: bool) -> None:
    """Stop the transformers Trainer inside ``trainer`` printing its closing metrics
    (``{'train_runtime': …}``) to stdout, where they land in the middle of loralab's own output."""
    # optional extra: setfit (transformers comes with it)
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class QuietProgress(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass  # the bar stays; the metrics dict it would write under it goes

    # Which of the two the Trainer installed depends on transformers' log level, not on --progress.
    trainer.st_trainer.pop_callback(PrinterCallback)
    if trainer.st_trainer.pop_callback(ProgressCallback) is not None and progress:
        trainer.st_trainer.add_callback(QuietProgress)


def _logistic_regression(config: TrainConfig):
    # setfit's own default head, given room to converge on few texts.
    weighting = "balanced" if config.class_weight == "balanced" else None
    return LogisticRegression(max_iter=3000, random_state=config.seed, class_weight=weighting)


def _body(path: str, config: TrainConfig):
    # optional extra: setfit (sentence-transformers)
    from sentence_transformers import SentenceTransformer

    body = SentenceTransformer(
        path, device="cpu", local_files_only=True, trust_remote_code=config.trust_remote_code
    )
    body.max_seq_length = config.max_length
    return body


def contrastive_sample(labels: Sequence[str], limit: int, seed: int) -> list[int]:
    """Indices of at most ``limit`` texts, stratified by class, for drawing pairs from."""
    if len(labels) <= limit:
        return list(range(len(labels)))
    kept, _ = train_test_split(
        np.arange(len(labels)), train_size=limit, stratify=list(labels), random_state=seed
    )
    return sorted(int(i) for i in kept)


class SetFitClassifier(Classifier):
    """A fine-tuned sentence-transformer body and a logistic-regression head."""

    def __init__(
        self,
        model,
        labels: list[str],
        config: TrainConfig,
        method: str,
        adapter_parameters: int | None = None,
    ) -> None:
        self.setfit_model = model  # a setfit.SetFitModel (not named model: that means a torch module)
        self.labels = labels
        self.config = config
        self.method = method
        self.adapter_parameters = adapter_parameters  # what trained in the body, if not all of it

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)))
        probs = self.setfit_model.predict_proba(
            list(texts),
            batch_size=batch_size or self.config.eval_batch_size,
            as_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(probs, dtype=np.float64)

    def parameter_counts(self) -> tuple[int, int]:
        head = self.setfit_model.model_head
        body = sum(p.numel() for p in self.setfit_model.model_body.parameters())
        head_size = int(head.coef_.size + head.intercept_.size)
        trained = body if self.adapter_parameters is None else self.adapter_parameters
        return trained + head_size, body + head_size

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.setfit_model.model_body.save(
            str(folder / BODY_DIR), create_model_card=False, safe_serialization=True
        )
        head = self.setfit_model.model_head
        arrays = {"coef": head.coef_, "intercept": head.intercept_}
        save_file(
            {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}, str(folder / HEAD_FILE)
        )
        self._write_info(folder, {"adapter_parameters": self.adapter_parameters})


@register
class SetFit(Method):
    """Contrastive fine-tuning of a sentence-transformer, then logistic regression (``setfit``)."""

    name = "setfit"
    summary = (
        "SetFit: contrastive fine-tuning of a sentence-transformer on text pairs, then logistic regression"
    )
    cost_rank = 5
    uses_encoder = True
    # Between head tuning and LoRA: it adapts the encoder, on pairs rather than epochs of texts.
    ladder_position: ClassVar[int | None] = 45
    seeded = True  # pair sampling and the body's training order follow the seed
    few_shot = True
    extra = "setfit"
    extra_module = "setfit"
    default_lr = 2e-5  # setfit's body learning rate
    default_epochs = 1
    default_batch_size = 16

    def unavailable(self, config: TrainConfig) -> str | None:
        missing = super().unavailable(config)
        if missing is not None:
            return missing
        if not choose_pooling(config.model, "auto").sentence_transformer:
            return (
                f"--method {self.name} fine-tunes a sentence-transformers model, and {config.model} is "
                f"not one (it has no {ST_MODULES} or {ST_DEFAULT_POOLING_DIR}/config.json saying how it "
                "pools a sentence); use a sentence-transformers checkpoint such as the default "
                "all-MiniLM-L6-v2."
            )
        return None

    def fit(self, splits: DataSplits, config: TrainConfig, *, progress: bool = True) -> FitResult:
        counts = splits.train.label_counts()
        lonely = [label for label, n in counts.items() if n < 2]
        if lonely:
            have = ", ".join(f"{k} {v:,}" for k, v in counts.items())
            raise LoralabError(
                f"--method {self.name} learns from pairs of texts of the same class, so every class needs at "
                f"least 2 training texts; {', '.join(lonely)} has 1 ({have})."
            )
        setfit = _setfit()
        start = time.perf_counter()
        lr = config.lr or self.default_lr
        epochs = config.epochs or self.default_epochs
        batch_size = config.batch_size or self.default_batch_size
        config = config.replace(lr=lr, epochs=epochs, batch_size=batch_size)
        label2id = splits.label2id
        train_ids = [label2id[y] for y in splits.train.labels]
        sample = contrastive_sample(splits.train.labels, max(2, config.setfit_max_pairs // 2), config.seed)
        planned = 2 * ITERATIONS * len(sample) * epochs
        max_steps = max(1, config.setfit_max_pairs // batch_size) if planned > config.setfit_max_pairs else -1
        steps = max_steps if max_steps > 0 else math.ceil(planned / batch_size)
        body = _body(resolve_model(config.model), config)
        adapters = self.adapt_body(body, config)
        model = setfit.SetFitModel(
            model_body=body, model_head=_logistic_regression(config), labels=splits.labels
        )
        with tempfile.TemporaryDirectory(prefix="loralab-setfit-") as scratch:
            args = setfit.TrainingArguments(
                output_dir=scratch,  # the library's Trainer wants one; loralab keeps no checkpoints of it
                batch_size=(batch_size, batch_size),
                num_epochs=(epochs, 1),
                num_iterations=ITERATIONS,
                max_steps=max_steps,
                body_learning_rate=(lr, lr),
                max_length=config.max_length,
                seed=config.seed,
                save_strategy="no",
                eval_strategy="no",
                logging_strategy="no",
                logging_first_step=False,
                report_to="none",
                show_progress_bar=progress,
            )
            trainer = setfit.Trainer(model=model, args=args)
            trainer.st_trainer.args.disable_tqdm = not progress
            _quiet_trainer_logs(trainer, progress)
            trainer.st_trainer.args.dataloader_pin_memory = torch.cuda.is_available()
            trainer.train_embeddings(
                [splits.train.texts[i] for i in sample], [train_ids[i] for i in sample], args=args
            )
            if adapters is not None:
                adapters.merge_and_unload()  # the body the head reads, and the one saved
            trainer.train_classifier(splits.train.texts, train_ids, args=args)
        trained = adapters.trained_parameters if adapters is not None else None
        classifier = SetFitClassifier(model, splits.labels, config, self.name, trained)
        contrastive = {
            "texts": len(sample),
            "pairs": min(planned, steps * batch_size),
            "steps": steps,
            "max_pairs": config.setfit_max_pairs,
            "limited_by_budget": max_steps > 0,
        }
        if adapters is not None:
            contrastive["adapter_parameters"] = adapters.trained_parameters
            contrastive["adapted_layers"] = len(adapters.targets)
        return FitResult(
            classifier,
            train_seconds=time.perf_counter() - start,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            details={"contrastive": contrastive},
        )

    def adapt_body(self, body, config: TrainConfig) -> BodyAdapters | None:
        """What trains in the contrastive phase: ``None`` for the whole body."""
        return None

    def load(self, folder: Path, info: dict) -> Classifier:
        setfit = _setfit()
        config = TrainConfig.from_dict(info["config"], strict=False)
        labels = list(info["labels"])
        if not (folder / BODY_DIR / ST_MODULES).exists() or not (folder / HEAD_FILE).exists():
            raise RunError(
                f"{folder}: the saved SetFit model is incomplete ({BODY_DIR}/ or {HEAD_FILE} missing)."
            )
        arrays = load_file(str(folder / HEAD_FILE))
        head = _logistic_regression(config)
        head.coef_, head.intercept_ = arrays["coef"], arrays["intercept"]
        head.classes_ = np.arange(len(labels))
        body = _body(str(folder / BODY_DIR), config)
        head.n_features_in_ = head.coef_.shape[1]
        model = setfit.SetFitModel(model_body=body, model_head=head, labels=labels)
        return SetFitClassifier(model, labels, config, self.name, info.get("adapter_parameters"))


class BodyAdapters:
    """LoRA adapters injected into a sentence-transformer body through PEFT's ``LoraModel``
    (the tuner under ``get_peft_model``, used bare because sentence-transformers calls the
    transformers model inside its own module and needs it to stay that model)."""

    def __init__(self, body, config: TrainConfig) -> None:
        from peft import LoraModel  # importing PEFT takes seconds; only this method needs it

        from loralab.methods.lora.peft_backend import adapter_config
        from loralab.models.targets import lora_targets

        for param in body.parameters():  # modules after the transformer (a Dense layer) too
            param.requires_grad = False
        encoder = body[0].auto_model
        # The pooler is not part of a sentence-transformer's output: nothing to adapt there.
        self.targets = lora_targets(encoder, ["pooler"], config)
        torch.manual_seed(config.seed)  # the adapters' initial values follow the run's seed
        self.tuner = LoraModel(encoder, adapter_config(self.targets, config), "default")  # in place
        self.body = body
        self.trained_parameters = sum(p.numel() for p in body.parameters() if p.requires_grad)

    def merge_and_unload(self) -> None:
        """Fold the adapters into the body's weights and make every weight trainable again, as
        a body that was loaded from disk is."""
        self.tuner.merge_and_unload()
        for param in self.body.parameters():
            param.requires_grad = True


@register
class SetFitLora(SetFit):
    """SetFit whose contrastive phase trains LoRA adapters on the body instead of every weight."""

    name = "setfit-lora"
    summary = (
        "SetFit with LoRA: contrastive training of low-rank adapters on the sentence-transformer "
        "(merged into it), then logistic regression"
    )
    lora_based = True  # but not trains_adapters: they are merged, and the saved body has none
    supports_lora_layers = True  # --lora-layers N adapts only the top N layers
    ladder_position = None  # opt-in: compare --methods …,setfit-lora
    default_lr = 1e-3  # adapters start at zero and need a larger step than the body's 2e-5
    # PEFT's own default. With 64 texts per class (5 seeds) it scored 72.6 ± 0.8 / 78.3 ± 0.7 on
    # rotten_tomatoes / SST-2 test against 71.5 ± 0.7 / 76.2 ± 1.6 with "normal" (docs/results.md).
    default_lora_init = "kaiming"

    def check(self, config: TrainConfig) -> None:
        super().check(config)
        if config.loraplus_lr_ratio is not None:
            raise LoralabError(
                "--loraplus-lr-ratio applies to --method lora and lora-scratch, which loralab trains; "
                "setfit-lora's adapters train in the setfit library's own optimizer, at one learning rate."
            )

    def check_model(self, config: TrainConfig, labels: list[str]) -> None:
        """Put the adapters into the body as training does, so that target modules that match
        no layer (or a rank too large for one) fail here."""
        self.adapt_body(_body(resolve_model(config.model), config), config)

    def adapt_body(self, body, config: TrainConfig) -> BodyAdapters | None:
        if not hasattr(body[0], "auto_model"):
            raise LoralabError(
                f"--method setfit-lora adapts the transformer of a sentence-transformers model, and "
                f"{config.model} has none ({type(body[0]).__name__}); use --method setfit."
            )
        return BodyAdapters(body, self.settled(config))
