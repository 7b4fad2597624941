"""Training precision, chosen by measurement rather than by habit.

``auto`` (the default) trains in bf16 autocast where it pays and in fp32 elsewhere:

- on a CUDA GPU, bf16 where the GPU has it, else fp16 (with Accelerate's loss scaling);
- on a CPU, bf16 when the CPU has bf16 instructions (AVX-512 BF16 or AMX) *and* a bf16
  matrix product of a transformer layer's size runs at least 1.25× faster than fp32 on it,
  timed once per process (about 50 ms). CPUs that emulate bf16 are slower in it than in fp32;
- elsewhere (Apple GPUs), fp32.

Autocast runs the matrix products in bf16; the weights, the optimizer and the loss stay in
fp32, and a trained model is saved and evaluated in fp32. Prediction runs in fp32 unless
asked otherwise (``loralab predict --precision auto|bf16``), so its probabilities are the
ones the run's report was computed from.
"""

from __future__ import annotations

import functools
import time

import torch

from loralab.errors import LoralabError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MIN_SPEEDUP = 1.25


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (oneDNN's check: AVX-512 BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@functools.cache
def cpu_bf16_speedup() -> float:
    """How much faster a bf16 matrix product of MiniLM's FFN size runs than fp32 on this CPU
    (0 without bf16 instructions)."""
    if not cpu_has_bf16():
        return 0.0
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2048, 384, generator=generator)
    w = torch.randn(1536, 384, generator=generator)

    def best(dtype: torch.dtype) -> float:
        a, b = x.to(dtype), w.to(dtype)
        torch.nn.functional.linear(a, b)  # warm-up: kernel selection
        times = []
        for _ in range(3):
            begin = time.perf_counter()
            torch.nn.functional.linear(a, b)
            times.append(time.perf_counter() - begin)
        return min(times)

    return best(torch.float32) / best(torch.bfloat16)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for training on ``device``; ``auto`` as described above."""
    if precision not in PRECISIONS:
        raise LoralabError(f"--precision must be one of {', '.join(PRECISIONS)}; got '{precision}'.")
    kind = device.type
    if precision == "auto":
        if kind == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if kind == "cpu":
            return "bf16" if cpu_bf16_speedup() >= MIN_SPEEDUP else "fp32"
        return "fp32"
    if precision == "fp16" and kind != "cuda":
        raise LoralabError(f"--precision fp16 needs a CUDA GPU; this run is on {kind}. Use bf16 or fp32.")
    if precision == "bf16" and kind == "cpu" and not cpu_has_bf16():
        raise LoralabError(
            "--precision bf16: this CPU has no bf16 instructions, so bf16 would be emulated and slow; "
            "use fp32."
        )
    return precision
