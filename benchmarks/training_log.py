"""A spaCy training logger that records when each evaluation happened, and
can stop training at a wall-time budget (for "equal training time" rows).

The budget is checked at every step, not only at evaluations: an evaluation
interval can last minutes, and a row trained "for crf_ner's wall time" must not
get them on top. Stopping raises TimeBudgetReached; model-best is the best
evaluation inside the budget, and spaCy saves model-last on the way out. The
training done after the last evaluation is never scored: the price of a budget
that is not overshot.

With checkpoint_every it also saves the pipeline every that many steps, under
checkpoint_dir/step<N>, so that a model-selection rule can be judged afterwards
on dev alone (benchmarks/selection.py) without retraining. At an evaluation step
the checkpoint holds the weights that evaluation scored.
"""
import sys
import time
from pathlib import Path
from typing import Dict, List

import spacy
from spacy.training.loggers import console_logger_v3

EVALUATIONS: List[Dict] = []  # filled during training: {"step", "seconds", "score"}
# The step spaCy's loop ended on. Patience stops it between evaluations, so the
# last evaluation's step can be up to eval_frequency short of it.
LAST_STEP = -1


class TimeBudgetReached(Exception):
    def __init__(self, step: int, seconds: float, budget: float):
        last = EVALUATIONS[-1]["step"] if EVALUATIONS else "none"
        super().__init__(f"stopped at step {step} after {seconds:.0f} s (budget {budget:.0f} s); last evaluation at step {last}")
        self.step = step


@spacy.registry.loggers("medner_bench.TimedLogger.v1")
def timed_logger(progress_bar: bool = False, time_budget: float = 0.0, checkpoint_every: int = 0, checkpoint_dir: str = ""):
    console = console_logger_v3(progress_bar=None)

    def setup(nlp, stdout=sys.stdout, stderr=sys.stderr):
        log_step, finalize = console(nlp, stdout, stderr)
        start = time.perf_counter()
        global LAST_STEP
        EVALUATIONS.clear()
        LAST_STEP = -1  # spaCy's numbering: its first update is step 0

        def log(info):
            # spaCy calls this after every step, with info None between evaluations.
            global LAST_STEP
            nonlocal start
            LAST_STEP += 1
            step = LAST_STEP
            log_step(info)
            seconds = time.perf_counter() - start
            if info is not None:
                EVALUATIONS.append({"step": info["step"], "seconds": round(seconds, 1), "score": float(info["score"])})
            if checkpoint_every and step and step % checkpoint_every == 0:
                saving = time.perf_counter()
                Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
                nlp.to_disk(Path(checkpoint_dir) / f"step{step}")
                start += time.perf_counter() - saving  # saving is not training time
            if time_budget and seconds >= time_budget:
                raise TimeBudgetReached(step, seconds, time_budget)

        return log, finalize

    return setup
