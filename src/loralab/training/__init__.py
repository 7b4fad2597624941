"""Training: the loop, checkpoints, and fitting any method (:mod:`loralab.training.fit`)."""
