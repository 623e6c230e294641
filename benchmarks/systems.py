"""The systems the benchmark trains and reports, declared once.

benchmarks.accuracy trains them, benchmarks.report names their rows, and
benchmarks.seen_mentions, benchmarks.selection and the speed rows refer to
them by these names. Importing this module imports nothing beyond the
standard library, so benchmarks.report rebuilds BENCHMARKS.md on a machine
without spaCy's training stack or torch; the word-feature overrides, which
need spaCy's config parser, are read on demand by `System.overrides()`.

The crf_ner variants are configs/cpu_default.cfg plus up to three recipes:
- word features: jieba word-segmentation features (CharEmbed.v2), opt-in in
  the library because they slow prediction. The encoder is the one that
  configs/cpu_accuracy.cfg ships, read from that file, so the rows and the
  shipped config cannot drift apart;
- parameter averaging (`use_averages`): evaluations and the kept model use
  the optimizer's moving average of every weight;
- domain pretraining: the encoder starts from `spacy pretrain` weights (a path
  given at run time, from a pretraining run with the same encoder, since the
  word-feature encoder's layer shapes differ).
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = "configs/cpu_default.cfg"
# The shipped word-feature recipe: its crf_ner tok2vec section is the crf_ner_words encoder.
ACCURACY_CONFIG = "configs/cpu_accuracy.cfg"
TOK2VEC = ("components", "crf_ner", "model", "encoder", "tok2vec")

# How a system's training is budgeted (benchmarks.accuracy.train_spacy).
STEPS = "steps"  # --steps steps, warm-up a tenth of them, linear decay to zero
EQUAL_TIME = "equal time"  # the config's own schedule, stopped at EQUAL_TIME_TO's wall time in the same run
EQUAL_TIME_TO = "crf_ner"
CONVERGED = "converged"  # the config's own schedule and patience, or --time-cap


@dataclass(frozen=True)
class System:
    name: str
    title: str  # its row in BENCHMARKS.md
    config: Optional[str]  # training config, relative to the repository; None: not a spaCy pipeline (crfsuite)
    needs_torch: bool
    schedule: Optional[str] = STEPS
    words: bool = False
    averaged: bool = False
    pretrained: bool = False  # starts from `spacy pretrain` weights (--init-tok2vec)
    fgm: bool = True  # False: FGM adversarial training off (about half the training time per step)
    default: bool = False  # in benchmarks.accuracy's default --systems
    # For an opt-in variant of crf_ner: how the targets section names it. Its absence from a
    # corpus is not listed as a gap (pretraining needs unlabelled text only CCKS2019 ships).
    variant: Optional[str] = None

    @property
    def ours(self) -> bool:
        """A crf_ner row (the speed targets are ours to meet)."""
        return self.config == DEFAULT_CONFIG

    @property
    def config_path(self) -> Path:
        if self.config is None:
            raise ValueError(f"{self.name} is not trained from a spaCy config")
        return ROOT / self.config

    def overrides(self) -> Dict[str, Any]:
        """Config overrides of the recipes this system adds to its config (not the run's paths or steps)."""
        overrides: Dict[str, Any] = {}
        if self.words:
            overrides.update(word_features())
        if self.averaged:
            overrides["training.optimizer.use_averages"] = True
        if not self.fgm:
            overrides["components.crf_ner.fgm_epsilon"] = 0.0
        return overrides


def word_features() -> Dict[str, Any]:
    """configs/cpu_accuracy.cfg's word-feature encoder (CharEmbed.v2) as
    overrides of configs/cpu_default.cfg: every value of its tok2vec section."""
    from spacy.util import load_config

    section = load_config(ROOT / ACCURACY_CONFIG, interpolate=False)
    for key in TOK2VEC:
        section = section[key]
    return {".".join([*TOK2VEC, key]): value for key, value in section.items()}


def _crf_ner(name: str, title: str, variant: Optional[str] = None, **recipes: bool) -> System:
    return System(name, title, DEFAULT_CONFIG, needs_torch=True, variant=variant, default=not recipes, **recipes)


# Report order: ours first, then the baselines.
SYSTEMS: Dict[str, System] = {s.name: s for s in [
    _crf_ner("crf_ner", "crf_ner, configs/cpu_default.cfg (ours)"),
    _crf_ner("crf_ner_pretrained", "crf_ner, the same after `spacy pretrain` on unlabelled text (ours)",
             "with domain pretraining", pretrained=True),
    _crf_ner("crf_ner_words", "crf_ner, the same with jieba word features, CharEmbed.v2 (ours)",
             "with word features", words=True),
    _crf_ner("crf_ner_words_pretrained", "crf_ner, with word features and `spacy pretrain` (ours)",
             "with word features and domain pretraining", words=True, pretrained=True),
    _crf_ner("crf_ner_averaged", "crf_ner, the same with parameter averaging, `use_averages` (ours)",
             "with parameter averaging", averaged=True),
    _crf_ner("crf_ner_words_averaged", "crf_ner, with word features and averaging (ours)",
             "with word features and parameter averaging", words=True, averaged=True),
    _crf_ner("crf_ner_words_pretrained_averaged", "crf_ner, with word features, `spacy pretrain` and averaging (ours)",
             "with word features, domain pretraining and parameter averaging", words=True, averaged=True, pretrained=True),
    # The encoder of configs/cpu_default.cfg (torch BiGRU) under spaCy's transition-based parser.
    System("spacy_ner", "spaCy `ner`, same encoder and schedule", "benchmarks/configs/spacy_ner.cfg",
           needs_torch=True, default=True),
    System("spacy_ner_cnn", "spaCy `ner`, default accuracy CNN, equal wall time", "benchmarks/configs/spacy_ner_cnn.cfg",
           needs_torch=False, schedule=EQUAL_TIME, default=True),
    System("spacy_ner_cnn_converged", "spaCy `ner`, default accuracy CNN, trained to convergence",
           "benchmarks/configs/spacy_ner_cnn.cfg", needs_torch=False, schedule=CONVERGED),
    System("crfsuite", "character CRF (sklearn-crfsuite)", None, needs_torch=False, schedule=None, default=True),
]}


def seeded(system: str, seed: int) -> str:
    """The name of a run's result file and model folder: seed 0 keeps the plain system name."""
    return system if seed == 0 else f"{system}.seed{seed}"
