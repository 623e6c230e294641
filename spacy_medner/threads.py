"""How many intra-op threads torch may use in a worker, and the fork hook
that makes `nlp.pipe(texts, n_process=N)` work with `crf_ner` pipelines.

Why forked workers hung: torch's CPU build runs its intra-op parallelism on
GNU OpenMP (libgomp). Once a process has run one parallel region, libgomp
keeps a team of worker threads; `fork()` copies the team's bookkeeping but
not its threads, so a forked child's first parallel region with more than
one thread waits on a barrier for threads that do not exist, for ever.
spaCy's `n_process` forks (the default start method on Linux), so any
pipeline that had predicted once in the parent (a warm-up, a first
`nlp(text)`) hung its workers. One thread never enters the team, so a
forked child that sets `torch.set_num_threads(1)` before predicting is safe.

`install_fork_hook()` (run once when spacy_medner is imported) registers
`os.register_at_fork(after_in_child=...)`: every forked child that has torch
loaded sets its thread count to `fork_threads()`, 1 unless
`SPACY_MEDNER_FORK_THREADS` says otherwise. One thread is also a worker's
fair share when the workers are as many as the cores, and it is what keeps a
worker fast on a busy machine: OpenMP threads spin at their barriers, so two
processes with one thread per core each crawl when they share the cores.
Raise it only for workers started with the "spawn" or "forkserver" method,
or from a parent that never ran torch with more than one thread.

`worker_threads()` is the thread count of one annotate worker: 1, unless
`SPACY_MEDNER_THREADS` (or `annotate --threads`) says otherwise, and never
meant to exceed the worker's share of the cores (`cores_share(n_workers)`).
Why 1 and not the share: measured on this project's 2-core machine while
other processes ran (benchmarks/annotate_throughput.py), one process of the
test pipeline predicted 3,774 chars/s with 1 thread and 313 with 2; OpenMP's
spinning barriers cost more than the BiGRU's small matrix products gain. Use
the cores with more processes (`--n-process`), which share nothing, and
raise the threads only on a machine that is otherwise idle.
"""
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Optional, Tuple

THREADS_ENV = "SPACY_MEDNER_THREADS"
FORK_THREADS_ENV = "SPACY_MEDNER_FORK_THREADS"
DEFAULT_THREADS = 1

_hook_installed = False
_helper: Optional[Tuple[int, ThreadPoolExecutor]] = None


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count:
    a container or `taskset` may allow fewer)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _env_int(name: str) -> Optional[int]:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a whole number of threads") from None
    if number < 1:
        raise ValueError(f"{name}={value!r}: expected at least 1 thread")
    return number


def cores_share(n_workers: int = 1, cores: Optional[int] = None) -> int:
    """The cores divided among `n_workers` workers, at least 1."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, n_workers))


def worker_threads(n_workers: int = 1, cores: Optional[int] = None) -> int:
    """The intra-op threads of one of `n_workers` workers: `SPACY_MEDNER_THREADS`
    when set, else DEFAULT_THREADS (1) capped at the worker's share of the cores
    (see the module docstring for why not the whole share)."""
    override = _env_int(THREADS_ENV)
    return override if override is not None else min(DEFAULT_THREADS, cores_share(n_workers, cores))


def fork_threads() -> int:
    """The intra-op threads of a forked child: `SPACY_MEDNER_FORK_THREADS`, else 1."""
    try:
        override = _env_int(FORK_THREADS_ENV)
    except ValueError as err:  # a hook must not raise in a child: say why and use the safe value
        print(f"spacy_medner: {err}; using 1", file=sys.stderr)
        return 1
    return 1 if override is None else override


def limit_threads(n: int) -> None:
    """Set torch's intra-op threads to `n` (a no-op when torch is not loaded:
    importing it just to set a number would cost a second of start-up)."""
    torch = sys.modules.get("torch")
    # Always set, never compare first: in a forked child get_num_threads() can
    # report a value that libgomp does not act on.
    if torch is not None:
        torch.set_num_threads(n)


def helper_thread() -> ThreadPoolExecutor:
    """One helper thread per process, on which prediction runs work that
    overlaps the main thread's (the BiGRU's second direction) when torch has
    two or more threads: a GRU is a long series of small matrix products
    that one core runs about as fast as two, and aten's RNN kernel releases
    the GIL for the whole sequence. (Overlapping Viterbi and the
    forward-backward pass the same way was slower: their steps are too short
    to leave the GIL free.) Keyed by pid: a forked worker inherits the
    parent's executor object but not its thread. Submit with `beside`, inside
    `overlapped()`."""
    global _helper
    if _helper is None or _helper[0] != os.getpid():
        _helper = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="spacy_medner"))
    return _helper[1]


def overlap_helps(device) -> bool:
    """Whether work on a torch `device` should overlap on the helper thread:
    on CPU with two or more torch threads."""
    import torch

    return device.type == "cpu" and torch.get_num_threads() >= 2


@contextmanager
def overlapped():
    """The calling thread runs one intra-op thread for the block, as `beside`
    makes the helper thread do: two threads that each asked OpenMP for a team
    of two would put four busy threads on two cores, whose spinning barriers
    made the overlap slower than running the work in turn. OpenMP's thread
    count is per calling thread, so no other thread is affected."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def beside(fn: Callable, *args) -> Future:
    """`fn(*args)` on the helper thread, with one intra-op thread."""
    return helper_thread().submit(_one_thread, fn, *args)


def _one_thread(fn: Callable, *args):
    import torch

    torch.set_num_threads(1)
    return fn(*args)


def _after_fork_in_child() -> None:
    limit_threads(fork_threads())


def install_fork_hook() -> None:
    """Register the after-fork hook once per process (idempotent)."""
    global _hook_installed
    if not _hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _hook_installed = True


install_fork_hook()
