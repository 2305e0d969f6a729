"""Dynamic batching: inputs from concurrent requests share one forward pass.

Each input waits in one bounded queue with its own future. One worker takes up to max_batch_size inputs at a
time, and no more than max_batch_cost of their cost (a text's characters; an input over it goes alone) (waiting at most max_wait_s for the batch to fill), runs the model on them in one thread, and hands each
future its own answer. A request whose caller went away or ran out of time cancels its futures, and the worker
skips them: abandoned work is dropped before it reaches the model, never computed for nobody."""
from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable


class QueueFull(Exception):
    """The queue has no room for all of a request's inputs; the caller should retry later (503)."""


class Batcher:
    def __init__(self, run_batch: Callable[[list], list], max_batch_size: int, max_wait_s: float, max_queue: int,
                 on_batch: Callable[[int], None] = lambda size: None,
                 on_dropped: Callable[[int], None] = lambda count: None,
                 cost: Callable[[object], int] = lambda x: 0, max_batch_cost: int | None = None):
        self.run_batch = run_batch  # list of inputs -> list of answers, in order; runs in the model thread
        self.max_batch_size, self.max_wait_s, self.max_queue = max_batch_size, max_wait_s, max_queue
        self.on_batch, self.on_dropped = on_batch, on_dropped
        self.cost, self.max_batch_cost = cost, max_batch_cost  # the model thread's work per batch, bounded
        self.pending: deque[tuple[object, asyncio.Future]] = deque()
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="glassbox-model")  # one forward pass at a time
        self.task: asyncio.Task | None = None
        self.arrived = self.full = None  # asyncio.Events, made on the server's event loop in start()

    @property
    def depth(self) -> int:
        """Inputs waiting for the model (cancelled ones still count until the worker drops them)."""
        return len(self.pending)

    def start(self) -> None:
        self.arrived, self.full = asyncio.Event(), asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self.work())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        for _, future in self.pending:
            future.cancel()
        self.model_thread.shutdown(wait=True)

    def submit(self, inputs: list) -> list[asyncio.Future]:
        """One future per input, all queued or none (QueueFull)."""
        if len(self.pending) + len(inputs) > self.max_queue:
            raise QueueFull(f"the queue holds {len(self.pending)} of at most {self.max_queue} inputs")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in inputs]
        self.pending.extend(zip(inputs, futures))
        self.arrived.set()
        if len(self.pending) >= self.max_batch_size:
            self.full.set()
        return futures

    def take(self) -> list[tuple[object, asyncio.Future]]:
        """Up to max_batch_size live inputs from the front of the queue, costing at most max_batch_cost together
        (a first input costing more goes alone); cancelled ones are dropped here."""
        batch, dropped, spent = [], 0, 0
        while self.pending and len(batch) < self.max_batch_size:
            item = self.pending[0]
            if item[1].done():  # cancelled: its caller left or its deadline passed
                self.pending.popleft()
                dropped += 1
                continue
            cost = self.cost(item[0])
            if batch and self.max_batch_cost is not None and spent + cost > self.max_batch_cost:
                break  # the next batch starts with it
            self.pending.popleft()
            batch.append(item)
            spent += cost
        if dropped:
            self.on_dropped(dropped)
        return batch

    async def work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self.pending:
                self.arrived.clear()
                await self.arrived.wait()
            if len(self.pending) < self.max_batch_size and self.max_wait_s > 0:
                self.full.clear()
                try:  # give concurrent requests a moment to join this batch
                    await asyncio.wait_for(self.full.wait(), self.max_wait_s)
                except TimeoutError:
                    pass
            batch = self.take()
            if not batch:
                continue
            self.on_batch(len(batch))
            try:
                answers = await loop.run_in_executor(self.model_thread, self.run_batch, [x for x, _ in batch])
            except Exception as e:  # noqa: BLE001 - every caller in the batch hears of it, the worker goes on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, future), answer in zip(batch, answers):
                if not future.done():
                    future.set_result(answer)
