"""A spaCy training logger that records when each evaluation happened, and
can stop training at a wall-time budget (for "equal training time" rows).

The budget is checked at every step, not only at evaluations: an evaluation
interval can last minutes, and a row trained "for crf_ner's wall time" must not
get them on top. Stopping raises TimeBudgetReached; model-best is the best
evaluation inside the budget, and spaCy saves model-last on the way out. The
training done after the last evaluation is never scored: the price of a budget
that is not overshot.

What it records reaches the caller through a file the caller names
(`log_path`), not through module state: spaCy builds the logger from the
config, so a file is the one channel a caller owns. The logger writes it when
training starts (so a stale file from an earlier run can never be read as this
one's) and again when spaCy finalizes the logger, which spaCy does also when
training stops with an exception.

With checkpoint_every it also saves the pipeline every that many steps, under
checkpoint_dir/step<N>, so that a model-selection rule can be judged afterwards
on dev alone (benchmarks.selection) without retraining. At an evaluation step
the checkpoint holds the weights that evaluation scored.
"""
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import spacy
from spacy.training.loggers import console_logger_v3


@dataclass
class TrainingLog:
    evaluations: List[Dict] = field(default_factory=list)  # {"step", "seconds", "score"}
    # The step spaCy's loop ended on (its first update is step 0; -1: none). Patience stops it
    # between evaluations, so the last evaluation's step can be up to eval_frequency short of it.
    last_step: int = -1

    def to_disk(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)), encoding="utf8")

    @classmethod
    def from_disk(cls, path: Path) -> "TrainingLog":
        return cls(**json.loads(path.read_text(encoding="utf8")))


class TimeBudgetReached(Exception):
    def __init__(self, step: int, seconds: float, budget: float, last_evaluation: Optional[int]):
        last = "none" if last_evaluation is None else last_evaluation
        super().__init__(f"stopped at step {step} after {seconds:.0f} s (budget {budget:.0f} s); last evaluation at step {last}")
        self.step = step


@spacy.registry.loggers("medner_bench.TimedLogger.v1")
def timed_logger(progress_bar: bool = False, time_budget: float = 0.0, checkpoint_every: int = 0, checkpoint_dir: str = "",
                 log_path: str = ""):
    console = console_logger_v3(progress_bar=None)

    def setup(nlp, stdout=sys.stdout, stderr=sys.stderr):
        log_step, finalize_console = console(nlp, stdout, stderr)
        record = TrainingLog()
        save = (lambda: record.to_disk(Path(log_path))) if log_path else (lambda: None)
        save()
        start = time.perf_counter()

        def log(info):
            # spaCy calls this after every step, with info None between evaluations.
            nonlocal start
            record.last_step += 1
            step = record.last_step
            log_step(info)
            seconds = time.perf_counter() - start
            if info is not None:
                record.evaluations.append({"step": info["step"], "seconds": round(seconds, 1), "score": float(info["score"])})
            if checkpoint_every and step and step % checkpoint_every == 0:
                saving = time.perf_counter()
                Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
                nlp.to_disk(Path(checkpoint_dir) / f"step{step}")
                start += time.perf_counter() - saving  # saving is not training time
            if time_budget and seconds >= time_budget:
                last = record.evaluations[-1]["step"] if record.evaluations else None
                raise TimeBudgetReached(step, seconds, time_budget, last)

        def finalize():
            save()
            finalize_console()

        return log, finalize

    return setup
