"""LoRA backends: PEFT (``lora``, the default) and loralab's own layer (``lora-scratch``)."""

from loralab.methods.lora import peft_backend, scratch  # noqa: F401  (register the methods)
