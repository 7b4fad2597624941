"""Methods: one module per method, all behind :class:`~loralab.methods.base.Method`.

The registry (:func:`get_method`) imports a method's module when the method is first asked
for, so that a TF-IDF run loads without torch; the classes of the neural methods are in
:mod:`loralab.methods.neural`.
"""

from loralab.methods.base import (
    Classifier,
    FitResult,
    Method,
    default_ladder,
    get_method,
    load_saved_classifier,
    method_names,
    untrained_method,
)

__all__ = [
    "Classifier",
    "FitResult",
    "Method",
    "default_ladder",
    "get_method",
    "load_saved_classifier",
    "method_names",
    "untrained_method",
]
