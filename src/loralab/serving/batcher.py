"""Micro-batching: requests for the same model that arrive within a short wait share one
forward pass.

A transformer forward pass on a batch of 32 texts costs far less than 32 passes on one text,
so under concurrent load answering requests together raises throughput; the wait bounds the
latency this adds. One forward pass runs at a time (the CPU's cores are already used by
each pass), in a worker thread so the event loop keeps accepting requests.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[str, list[str]], list],
        max_wait_ms: float = 5.0,
        max_batch_texts: int = 256,
    ) -> None:
        self.predict = predict
        self.max_wait = max_wait_ms / 1000
        self.max_batch_texts = max_batch_texts
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loralab-predict")
        self.pending: dict[str, list[tuple[list[str], asyncio.Future]]] = defaultdict(list)
        self.scheduled: set[str] = set()
        self.lock: asyncio.Lock | None = None
        self.batches = 0  # forward passes run, for the load test's report

    async def submit(self, model: str, texts: list[str]) -> list:
        loop = asyncio.get_running_loop()
        if self.lock is None:
            self.lock = asyncio.Lock()
        if self.max_wait <= 0:  # no batching: one request, one pass
            async with self.lock:
                self.batches += 1
                return await loop.run_in_executor(self.executor, self.predict, model, texts)
        future = loop.create_future()
        self.pending[model].append((texts, future))
        if model not in self.scheduled:
            self.scheduled.add(model)
            loop.create_task(self._flush(model))
        return await future

    async def _flush(self, model: str) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self.max_wait)
        assert self.lock is not None  # created by the first request, before any flush is scheduled
        async with self.lock:  # requests arriving while a pass runs join the next one
            self.scheduled.discard(model)
            waiting = self.pending.pop(model, [])
            while waiting:
                batch: list = []
                size = 0
                while waiting and (not batch or size + len(waiting[0][0]) <= self.max_batch_texts):
                    batch.append(waiting.pop(0))
                    size += len(batch[-1][0])
                texts = [t for request, _ in batch for t in request]
                self.batches += 1
                try:
                    results = await loop.run_in_executor(self.executor, self.predict, model, texts)
                except Exception as error:  # every request in the batch gets the error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                start = 0
                for request, future in batch:
                    if not future.done():
                        future.set_result(results[start : start + len(request)])
                    start += len(request)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
