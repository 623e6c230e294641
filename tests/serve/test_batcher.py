"""The micro-batcher in one event loop, with a predict function that records
its calls: how requests are grouped, split back, and isolated from a failure."""
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List

from spacy_medner.serve.batcher import MicroBatcher


class Recorder:
    """Answers each text with its reversal, and fails on texts starting with "!"."""

    def __init__(self, pause: float = 0.0) -> None:
        self.calls: List[List[str]] = []
        self.pause = pause

    def __call__(self, texts: List[str]) -> List[list]:
        self.calls.append(list(texts))
        time.sleep(self.pause)  # a model call takes time, during which requests queue
        if any(text.startswith("!") for text in texts):
            raise ValueError("this text breaks the model")
        return [[text[::-1]] for text in texts]


def run(coroutine_factory, **options):
    async def main():
        executor = ThreadPoolExecutor(1)
        batcher = MicroBatcher(options.pop("predict"), executor, **options)
        batcher.start()
        try:
            return await coroutine_factory(batcher), batcher
        finally:
            await batcher.stop()
            executor.shutdown()

    return asyncio.run(main())


def test_concurrent_requests_share_calls_and_get_their_own_answers_in_order():
    predict = Recorder(pause=0.05)
    requests = [[f"a{i}"] if i % 2 else [f"b{i}", f"c{i}", f"d{i}"] for i in range(20)]

    async def go(batcher):
        return await asyncio.gather(*(batcher.submit(texts) for texts in requests))

    answers, batcher = run(go, predict=predict, max_wait_s=0.0, max_texts=16)
    assert answers == [[[t[::-1]] for t in texts] for texts in requests]
    assert len(predict.calls) < len(requests) and batcher.batches == len(predict.calls)
    assert all(len(call) <= 16 + 2 for call in predict.calls)  # a request is never split
    assert sorted(t for call in predict.calls for t in call) == sorted(t for texts in requests for t in texts)


def test_without_batching_each_request_is_its_own_call():
    predict = Recorder()
    requests = [["a"], ["b", "c"], ["d"]]

    async def go(batcher):
        return await asyncio.gather(*(batcher.submit(texts) for texts in requests))

    answers, _ = run(go, predict=predict, batching=False)
    assert answers == [[["a"]], [["b"], ["c"]], [["d"]]]
    assert sorted(predict.calls) == sorted(requests)


def test_a_failing_text_fails_its_own_request_only():
    predict = Recorder(pause=0.02)
    requests = [["ok1"], ["!bad"], ["ok2", "ok3"]]

    async def go(batcher):
        return await asyncio.gather(*(batcher.submit(texts) for texts in requests), return_exceptions=True)

    answers, _ = run(go, predict=predict, max_wait_s=0.0)
    assert answers[0] == [["1ko"]] and answers[2] == [["2ko"], ["3ko"]]
    assert isinstance(answers[1], ValueError)
    # Batched together first; after the failure, each request alone.
    assert predict.calls == [["ok1", "!bad", "ok2", "ok3"], ["ok1"], ["!bad"], ["ok2", "ok3"]]


def test_a_lone_request_does_not_wait_for_company():
    async def go(batcher):
        start = time.perf_counter()
        await batcher.submit(["alone"])
        return time.perf_counter() - start

    elapsed, _ = run(go, predict=Recorder(), max_wait_s=5.0)
    assert elapsed < 2.5, "nothing was arriving, so the 5 s ceiling must not be waited out"


def test_a_batch_waits_for_a_request_already_arriving():
    predict = Recorder()

    async def go(batcher):
        token = batcher.request_arrived()  # received, body still being read

        async def late():
            await asyncio.sleep(0.05)
            return await batcher.submit(["late"], token)

        return await asyncio.gather(batcher.submit(["early"]), late())

    answers, batcher = run(go, predict=predict, max_wait_s=5.0)
    assert answers == [[["ylrae"]], [["etal"]]]
    assert predict.calls == [["early", "late"]]
    assert batcher.arriving == 0
