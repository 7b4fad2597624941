from dataclasses import replace

import numpy as np
import pytest

from loralab.config import TrainConfig
from loralab.data import LabelledTexts, load_data
from loralab.runs.train import load_run, train_run

TEXTS = ["the film was good", "a dull and boring plot", "okay", "charming acting, weak story"]


@pytest.mark.parametrize("method", ["tfidf-logreg", "tfidf-nb"])
def test_tfidf_baseline_fits_predicts_saves_and_loads_without_pickle(synthetic_dir, tmp_path, method):
    out = tmp_path / method
    result = train_run(synthetic_dir, TrainConfig(method=method), out, progress=False)
    assert result.metrics["test"]["accuracy"] >= 0.9  # the sentiment word decides the class
    files = {p.name for p in (out / "model").iterdir()}
    assert files == {"loralab.json", "baseline.json", "baseline.safetensors", "README.md"}  # README: the card
    reloaded = load_run(out)
    np.testing.assert_allclose(reloaded.predict_proba(TEXTS), result.classifier.predict_proba(TEXTS))
    assert reloaded.predict(["good"]) == ["positive"]
    assert result.manifest["trainable_parameters"] > 0


def test_vectorizer_settings_are_used(synthetic_dir, tmp_path):
    config = TrainConfig(method="tfidf-logreg", tfidf_ngram_max=1, tfidf_max_features=5)
    result = train_run(synthetic_dir, config, tmp_path / "r", progress=False)
    assert len(result.classifier.vectorizer.vocabulary_) == 5


def test_embedding_baselines_share_one_encoder_pass(tiny_bert, synthetic_dir, tmp_path, monkeypatch):
    import loralab.methods.embedding as embedding
    import loralab.methods.features as features

    monkeypatch.setenv("LORALAB_CACHE_DIR", str(tmp_path / "cache"))
    encoded: list[tuple[str, ...]] = []
    real = features.encode_texts

    def recording(model, texts, *args, **kwargs):
        encoded.append(tuple(texts))
        return real(model, texts, *args, **kwargs)

    monkeypatch.setattr(features, "encode_texts", recording)
    monkeypatch.setattr(embedding, "encode_texts", recording)
    results = {}
    for method in ("embed-logreg", "embed-svm", "embed-ridge"):
        config = TrainConfig(method=method, model=str(tiny_bert), pooling="mean")
        results[method] = train_run(synthetic_dir, config, tmp_path / method, progress=False)
    splits = results["embed-logreg"].splits
    # the training, validation and test texts each went through the encoder once
    for part in (splits.train, splits.validation, splits.test):
        assert encoded.count(tuple(part.texts)) == 1
    for method, result in results.items():
        reloaded = load_run(tmp_path / method)
        np.testing.assert_allclose(
            reloaded.predict_proba(TEXTS), result.classifier.predict_proba(TEXTS), atol=1e-5
        )
        probs = reloaded.predict_proba(TEXTS)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_logreg_probabilities_match_scikit_learn(tiny_bert, synthetic_dir, tmp_path, monkeypatch):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from loralab.methods.features import cached_features

    monkeypatch.setenv("LORALAB_CACHE_DIR", str(tmp_path / "cache"))
    result = train_run(
        synthetic_dir,
        TrainConfig(method="embed-logreg", model=str(tiny_bert), baseline_c=1.0),
        tmp_path / "r",
        progress=False,
    )
    assert "baseline_c" not in result.manifest  # asked for, not chosen
    splits = result.splits
    features = cached_features(str(tiny_bert), splits.train.texts, "cls", 128)
    scaler = StandardScaler().fit(features)
    reference = LogisticRegression(max_iter=3000, random_state=42).fit(
        scaler.transform(features), [splits.label2id[y] for y in splits.train.labels]
    )
    test_features = cached_features(str(tiny_bert), splits.test.texts, "cls", 128)
    np.testing.assert_allclose(
        result.classifier.predict_proba(splits.test.texts),
        reference.predict_proba(scaler.transform(test_features)),
        atol=1e-4,
    )


def test_unknown_pooling_is_refused(synthetic_dir, tmp_path):
    from loralab.errors import LoralabError

    with pytest.raises(LoralabError, match="--pooling must be one of auto, cls, mean, max"):
        train_run(
            synthetic_dir, TrainConfig(method="embed-svm", pooling="median"), tmp_path / "r", progress=False
        )
    assert not (tmp_path / "r").exists()


def test_logreg_chooses_its_regularisation_on_the_training_texts(tiny_bert, synthetic_dir, tmp_path):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    from loralab.methods.embedding import C_GRID
    from loralab.methods.features import cached_features

    result = train_run(
        synthetic_dir,
        TrainConfig(method="embed-logreg", model=str(tiny_bert)),
        tmp_path / "r",
        progress=False,
    )
    splits = result.splits
    labels = [splits.label2id[y] for y in splits.train.labels]
    scaled = StandardScaler().fit_transform(cached_features(str(tiny_bert), splits.train.texts, "cls", 128))
    reference = LogisticRegressionCV(
        Cs=C_GRID,
        l1_ratios=(0.0,),
        cv=StratifiedKFold(5, shuffle=True, random_state=42),
        scoring="neg_log_loss",
        max_iter=3000,
        random_state=42,
        use_legacy_attributes=False,
    ).fit(scaled, labels)
    chosen = result.manifest["baseline_c"]
    assert chosen["c"] == pytest.approx(float(reference.C_))
    assert chosen["source"].startswith("5-fold cross-validation (log loss) on the training texts")
    # Validation texts play no part: the same training texts give the same C whatever validation holds.
    fewer = replace(
        splits, validation=LabelledTexts(splits.validation.texts[:4], splits.validation.labels[:4])
    )
    again = train_run(
        fewer, TrainConfig(method="embed-logreg", model=str(tiny_bert)), tmp_path / "v", progress=False
    )
    assert again.manifest["baseline_c"]["c"] == chosen["c"]


def test_one_text_in_a_class_leaves_nothing_to_cross_validate(tiny_bert, synthetic_dir, tmp_path):
    splits = load_data(synthetic_dir)
    keep = [i for i, y in enumerate(splits.train.labels) if y != splits.labels[0]]
    keep.append(splits.train.labels.index(splits.labels[0]))
    train = LabelledTexts([splits.train.texts[i] for i in keep], [splits.train.labels[i] for i in keep])
    result = train_run(
        replace(splits, train=train),
        TrainConfig(method="embed-logreg", model=str(tiny_bert)),
        tmp_path / "r",
        progress=False,
    )
    assert "baseline_c" not in result.manifest and result.metrics["test"]["n"] > 0


def test_a_run_is_compared_by_the_settings_its_method_reads():
    from loralab.methods import get_method

    before = TrainConfig(baseline_c=1.0).to_dict()  # what runs recorded when 1.0 was the default
    now = TrainConfig().to_dict()
    for name in ("lora", "full", "head", "tfidf-logreg", "tfidf-nb", "embed-svm", "embed-ridge"):
        method = get_method(name)
        assert method.comparable_settings(before) == method.comparable_settings(now), name
    # embed-logreg reads it: unset now means cross-validated, which a C = 1 run was not.
    logreg = get_method("embed-logreg")
    assert logreg.comparable_settings(before) != logreg.comparable_settings(now)
    tfidf = get_method("tfidf-logreg")
    assert tfidf.comparable_settings(TrainConfig(baseline_c=0.5).to_dict()) != tfidf.comparable_settings(now)


def test_an_unset_lora_init_is_compared_as_the_methods_own_default():
    from loralab.methods import get_method

    saved_normal = TrainConfig(lora_init="normal").to_dict()  # recorded when normal was everyone's default
    saved_kaiming = TrainConfig(lora_init="kaiming").to_dict()
    now = TrainConfig().to_dict()
    for name in ("lora", "lora-scratch", "full", "tfidf-logreg", "embed-logreg", "setfit"):
        method = get_method(name)
        assert method.comparable_settings(saved_normal) == method.comparable_settings(now), name
    # methods without adapters never read the LoRA settings: asking others does not stale them
    for name in ("full", "head", "tfidf-logreg", "embed-logreg", "setfit"):
        method = get_method(name)
        other = TrainConfig(lora_init="kaiming", lora_rank=4, lora_layers=2).to_dict()
        assert method.comparable_settings(other) == method.comparable_settings(now), name
    assert get_method("lora").comparable_settings(saved_kaiming) != get_method("lora").comparable_settings(
        now
    )
    setfit_lora = get_method("setfit-lora")
    assert setfit_lora.comparable_settings(saved_kaiming) == setfit_lora.comparable_settings(now)
    assert setfit_lora.comparable_settings(saved_normal) != setfit_lora.comparable_settings(now)
    # a run records the value it used
    assert get_method("lora").settled(TrainConfig()).lora_init == "normal"
    assert setfit_lora.settled(TrainConfig()).lora_init == "kaiming"
    assert setfit_lora.settled(TrainConfig(lora_init="pissa")).lora_init == "pissa"
