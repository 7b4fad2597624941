"""embed-logreg at scikit-learn's C = 1 against C chosen by cross-validation on the training texts.

    python benchmarks/embed_regularisation.py ../shared/data/rotten_tomatoes ../shared/data/sst2

For each data set and size (8, 32 and 128 texts per class, five seeds' subsets drawn as
``loralab compare --train-sizes`` draws them, and the whole training split with seed 42), fits
both models on the same cached mean-pooled MiniLM features (loralab's feature cache: the first
run encodes every text once) and prints mean test accuracy. The cross-validated model is
built by embed-logreg itself (:meth:`loralab.methods.embedding.EmbedLogReg.estimator`), so
this measures the method's own default.
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", nargs="+")
    parser.add_argument("--sizes", default="8,32,128,all")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from loralab.config import TrainConfig
    from loralab.data import load_data
    from loralab.methods.embedding import EmbedLogReg
    from loralab.methods.features import cached_features
    from loralab.models.pooling import choose_pooling
    from loralab.runs.compare import per_class_subset, subset_seeds

    config = TrainConfig(method="embed-logreg")
    pooling = choose_pooling(config.model, config.pooling).pooling
    print("| data | per class | C = 1 | cross-validated C | chosen C (last seed) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for data in args.data:
        splits = load_data(data)
        test = cached_features(config.model, splits.test.texts, pooling, config.max_length)
        for size in args.sizes.split(","):
            seeds = [42] if size == "all" else subset_seeds(42, args.seeds)
            fixed, chosen, c = [], [], float("nan")
            for seed in seeds:
                part = splits if size == "all" else per_class_subset(splits, int(size), seed)
                features = cached_features(config.model, part.train.texts, pooling, config.max_length)
                labels = np.array([part.label2id[y] for y in part.train.labels])
                truth = np.array([part.label2id[y] for y in splits.test.labels])
                scaler = StandardScaler().fit(features)
                x, x_test = scaler.transform(features), scaler.transform(test)
                plain = LogisticRegression(C=1.0, max_iter=3000, random_state=seed).fit(x, labels)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # tiny folds: some C values do not converge
                    tuned = EmbedLogReg().estimator(config.replace(seed=seed), labels).fit(x, labels)
                fixed.append(float((plain.predict(x_test) == truth).mean()))
                chosen.append(float((tuned.predict(x_test) == truth).mean()))
                c = float(getattr(tuned, "C_", 1.0))
            print(
                f"| {data} | {size} | {100 * statistics.fmean(fixed):.1f} | "
                f"{100 * statistics.fmean(chosen):.1f} | {c:.2g} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
