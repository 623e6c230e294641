"""One reader per format. Each is `read(paths, report, **options) -> Iterator[Record]`
with character offsets converted to end-exclusive."""
from .brat import read_brat
from .ccks2019 import read_ccks2019
from .cmeee import read_cmeee
from .conll import read_conll
from .healthner import read_healthner
from .span_jsonl import read_doccano, read_prodigy

READERS = {
    "ccks2019": read_ccks2019,
    "cmeee": read_cmeee,
    "brat": read_brat,
    "conll": read_conll,
    "healthner": read_healthner,
    "doccano": read_doccano,
    "prodigy": read_prodigy,
}
