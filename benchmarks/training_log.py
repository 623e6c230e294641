"""A spaCy training logger that records when each evaluation happened, and
can stop training at a wall-time budget (for "equal training time" rows).

Stopping raises TimeBudgetReached after an evaluation: spaCy has saved
model-best by then, and saves model-last on the way out.
"""
import sys
import time
from typing import Dict, List

import spacy
from spacy.training.loggers import console_logger_v3

EVALUATIONS: List[Dict] = []  # filled during training: {"step", "seconds", "score"}


class TimeBudgetReached(Exception):
    pass


@spacy.registry.loggers("medner_bench.TimedLogger.v1")
def timed_logger(progress_bar: bool = False, time_budget: float = 0.0):
    console = console_logger_v3(progress_bar=None)

    def setup(nlp, stdout=sys.stdout, stderr=sys.stderr):
        log_step, finalize = console(nlp, stdout, stderr)
        start = time.perf_counter()
        EVALUATIONS.clear()

        def log(info):
            log_step(info)
            if info is None:
                return
            seconds = time.perf_counter() - start
            EVALUATIONS.append({"step": info["step"], "seconds": round(seconds, 1), "score": float(info["score"])})
            if time_budget and seconds >= time_budget:
                raise TimeBudgetReached(f"stopped at step {info['step']} after {seconds:.0f} s (budget {time_budget:.0f} s)")

        return log, finalize

    return setup
