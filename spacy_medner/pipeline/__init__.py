from .crf_ner import CRFEntityRecognizer, make_crf_ner
from .span_ner import SpanEntityRecognizer, make_span_ner

__all__ = ["CRFEntityRecognizer", "make_crf_ner", "SpanEntityRecognizer", "make_span_ner"]
