"""LoRA backends: PEFT (default)."""

from loralab.methods.lora import peft_backend  # noqa: F401  (registers "lora")
