"""spacy_medner: Chinese medical named-entity recognition for spaCy.

Importing the package registers the `crf_ner` factory and the
`spacy_medner.*` architectures. Installed, it also registers them through
entry points, so a trained pipeline loads without importing it.
"""
from . import threads  # noqa: F401  (first: the fork hook that keeps n_process workers from hanging)
from . import architectures  # noqa: F401
from .pipeline import CRFEntityRecognizer

__version__ = "0.1.0"
__all__ = ["CRFEntityRecognizer", "__version__"]
