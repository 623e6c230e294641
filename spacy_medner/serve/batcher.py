"""Micro-batching: concurrent requests share one `nlp.pipe` call.

Each request puts its texts on a queue and awaits a future. One consumer task
takes the first waiting request, gathers the others, and runs the model on all
of them on the model's thread, off the event loop. While that call runs, new
requests queue up and form the next batch, so under load batches grow by
themselves.

How long to wait for more is the one trade-off: waiting lets requests that
arrive a few milliseconds apart share a call, but every millisecond waited is
latency that nobody may need. The batcher therefore waits only for requests
the server has already received and is still reading or validating
(`arriving`, counted by the app from the moment a request comes in until its
texts are queued), and for at most `max_wait_s`. A lone request never waits,
and a closed loop of N clients closes its batch as soon as the N-th request is
in, instead of sitting out a fixed timer.

With `batching=False` the consumer runs each request by itself, in arrival
order: the baseline the load benchmark compares against.

If a batch fails, each of its requests is run again alone, so one text that
breaks the model fails its own request only.
"""
import asyncio
import logging
from concurrent.futures import Executor
from typing import Any, Callable, List, Optional, Tuple

logger = logging.getLogger("uvicorn.error")  # uvicorn configures its handlers

Predict = Callable[[List[str]], List[Any]]  # one result per text, in order
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
        # Requests received whose texts are not on the queue yet (see the module docstring).
        self.arriving = 0
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

    def request_arrived(self) -> dict:
        """Count a request in; returns the token `submit` and `request_left` take."""
        self.arriving += 1
        return {"arriving": True}

    def request_left(self, token: dict) -> None:
        """The request is answered (or refused before it submitted anything)."""
        if token.pop("arriving", False):
            self.arriving -= 1

    async def submit(self, texts: List[str], token: Optional[dict] = None) -> List[Any]:
        """The result of each of `texts` (what `predict` gives), in order."""
        if token is not None:
            self.request_left(token)
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
                if remaining <= 0 or self.arriving <= 0:
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
