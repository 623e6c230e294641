"""Micro-batching: concurrent requests share one `nlp.pipe` call.

Each request puts its texts on a queue and awaits a future. One consumer task
takes the first waiting request, gathers more for up to `max_wait_s` or until
it holds `max_texts` texts, and runs the model on all of them on the model's
thread, off the event loop. While that call runs, new requests queue up and
form the next batch, so under load batches grow by themselves; the short wait
only helps requests that arrive a few milliseconds apart. The wait is what
batching costs a lone request (its latency grows by up to `max_wait_s`), which
is why it is short and an option (0 keeps only the natural batching).

With `batching=False` the consumer runs each request by itself, in arrival
order: the baseline the load benchmark compares against.

If a batch fails, each of its requests is run again alone, so one text that
breaks the model fails its own request only.
"""
import asyncio
import logging
from concurrent.futures import Executor
from typing import Callable, List, Optional, Tuple

logger = logging.getLogger("uvicorn.error")  # uvicorn configures its handlers

Predict = Callable[[List[str]], List[list]]
Item = Tuple[List[str], asyncio.Future]


class MicroBatcher:
    def __init__(self, predict: Predict, executor: Executor, *, batching: bool = True, max_wait_s: float = 0.005, max_texts: int = 64) -> None:
        self.predict = predict
        self.executor = executor
        self.batching = batching
        self.max_wait_s = max(0.0, max_wait_s)
        self.max_texts = max(1, max_texts)
        self.batches = 0  # model calls so far, for the metadata endpoint
        self.texts = 0
        self._queue: Optional[asyncio.Queue] = None
        self._task: Optional[asyncio.Task] = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._consume(), name="spacy_medner-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def submit(self, texts: List[str]) -> List[list]:
        """The entities of each of `texts`, in order."""
        if not texts:
            return []
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((texts, future))
        return await future

    async def _consume(self) -> None:
        while True:
            batch = await self._gather()
            await self._run(batch)

    async def _gather(self) -> List[Item]:
        batch = [await self._queue.get()]
        if not self.batching:
            return batch
        loop = asyncio.get_running_loop()
        size = len(batch[0][0])
        deadline = loop.time() + self.max_wait_s
        while size < self.max_texts:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            batch.append(item)
            size += len(item[0])
        return batch

    async def _run(self, batch: List[Item]) -> None:
        loop = asyncio.get_running_loop()
        texts = [text for item_texts, _ in batch for text in item_texts]
        try:
            results = await loop.run_in_executor(self.executor, self.predict, texts)
        except Exception as err:
            if len(batch) > 1:
                logger.warning("a batch of %d requests failed (%s); running them one by one", len(batch), err)
                for item in batch:
                    await self._run([item])
                return
            logger.exception("prediction failed")
            _settle(batch[0][1], error=err)
            return
        self.batches += 1
        self.texts += len(texts)
        start = 0
        for item_texts, future in batch:
            _settle(future, result=results[start : start + len(item_texts)])
            start += len(item_texts)


def _settle(future: asyncio.Future, result=None, error: Optional[BaseException] = None) -> None:
    if future.done():  # the client went away and its handler was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
