"""displaCy colours: one distinct, readable colour for every entity label.

    import spacy
    from spacy import displacy

    nlp = spacy.load("zh_medner")        # crf_ner registers its labels' colours
    displacy.render(nlp(text), style="ent")

`COLORS` is the hand-picked palette of the shipped corpora's labels.
`label_colors(labels)` gives those labels their palette colour and every other
label a generated light colour; `register_displacy_colors(colors)` puts them in
spaCy's `displacy_colors` registry, which displaCy's entity renderer merges into
its defaults on every call, so a plain `displacy.render(doc, style="ent")`
uses them with no options and no import of this module.
"""
import colorsys
import hashlib
import math
from functools import lru_cache
from typing import Dict, Iterable, List, Tuple

COLORS = {
    # CCKS2019
    "解剖部位": "#8ecae6",
    "疾病和诊断": "#ff8fa3",
    "药物": "#b5e48c",
    "实验室检验": "#ffd166",
    "手术": "#cdb4db",
    "影像检查": "#f4a261",
    # CCKS2017 (疾病和诊断 as above)
    "身体部位": "#8ecae6", "症状和体征": "#f28482", "检查和检验": "#ffd166", "治疗": "#cdb4db",
    # CMeEE
    "bod": "#8ecae6", "dis": "#ff8fa3", "dru": "#b5e48c", "ite": "#ffd166", "pro": "#cdb4db",
    "sym": "#f28482", "mic": "#84a59d", "equ": "#bde0fe", "dep": "#e9c46a",
    # ROCLING / HealthNER
    "BODY": "#8ecae6", "SYMP": "#f28482", "DISE": "#ff8fa3", "DRUG": "#b5e48c", "CHEM": "#90be6d",
    "EXAM": "#ffd166", "TREAT": "#cdb4db", "INST": "#bde0fe", "SUPP": "#e9c46a", "TIME": "#d9d9d9",
    # tcm_manual
    "SYMPTOM": "#f28482", "DISEASE": "#ff8fa3", "DRUG_EFFICACY": "#a7c957", "PERSON_GROUP": "#bde0fe",
    "SYNDROME": "#e5989b", "DRUG_TASTE": "#fcbf49", "DRUG_DOSAGE": "#f4a261", "DRUG_INGREDIENT": "#90be6d",
    "FOOD_GROUP": "#e9c46a", "DISEASE_GROUP": "#ffafcc", "FOOD": "#ffe5b4", "DRUG_GROUP": "#b5e48c",
}

# Two generated colours are at least this far apart (CIE76 ΔE in L*a*b*): the
# palette's own closest pair within one corpus (CMeEE ite/dep) is 10.2.
MIN_DELTA_E = 10.0
# Small label sets first try colours at least this far apart (clearly different hues).
WIDE_DELTA_E = 20.0
# Black entity text on every generated colour reaches WCAG's AAA contrast (7:1);
# the palette's darkest colour (#84a59d) has 7.85.
MIN_CONTRAST = 7.0
# The name under which register_displacy_colors keeps its colours in spaCy's registry.
REGISTRY_NAME = "spacy_medner"

Lab = Tuple[float, float, float]


def label_colors(labels: Iterable[str]) -> Dict[str, str]:
    """A distinct, readable background colour for every label, as "#rrggbb".

    Labels of the palette (COLORS) keep their colour. Every other label takes a
    light colour (black text on it reads at 7:1 or more) from a fixed list,
    starting at the candidate its label's SHA-1 points to. So the colour depends
    on the label, not on the process, the order of `labels` or a hash seed, and
    a label keeps it across pipelines with other labels.

    The trade-off: a colour fixed by the label alone cannot be guaranteed
    distinct from every other label's (random hues collide, and only about 90
    colours ΔE 10 apart fit in the light, readable range). Labels are therefore
    placed in sorted order, and one whose candidate lies too close to a colour
    already placed walks on to the next candidate that is far enough. Candidates
    come first from 28 colours at least ΔE 20 apart (so small label sets get
    clearly different hues), then from 489 finer ones at ΔE 10 (so 40 labels
    and more still fit). Only a near-collision makes a label's colour depend on
    the other labels: in random sets of 6 labels it moves about 9% of them. A
    palette label whose colour another label of the set already has (the
    palette gives one concept one colour across corpora: "bod" and "BODY") is
    generated too. displaCy upper-cases labels, so labels differing only in
    case share one colour there.
    """
    unique = sorted(set(labels))
    known = [label for label in unique if label in COLORS]
    generated = [label for label in unique if label not in COLORS]
    colors: Dict[str, str] = {}
    tiers = _Tiers()
    for label in known:
        if COLORS[label] in colors.values():
            generated.append(label)
        else:
            colors[label] = COLORS[label]
            tiers.place(COLORS[label])
    for label in sorted(generated):
        colors[label] = tiers.first_free(label, taken=set(colors.values()))
        tiers.place(colors[label])
    return colors


def register_displacy_colors(colors: Dict[str, str]) -> None:
    """Add `colors` (label → CSS colour) to spaCy's `displacy_colors` registry.

    displaCy's EntityRenderer merges every entry of that registry into its
    default colours each time it renders, before the `colors` option, so a
    user's `displacy.render(doc, style="ent")` picks these up without options.
    The colours of every pipeline registered in this process are merged under
    one name (REGISTRY_NAME); a label registered twice keeps the later colour.
    """
    from spacy.util import registry

    registry.displacy_colors.register(REGISTRY_NAME, func={**registered_colors(), **colors})


class LabelColors:
    """For an entity component (crf_ner, span_ner): its labels' colours are
    chosen once (`label_colors`), stored in its `cfg["colors"]` so they travel
    with the pipeline, and registered with displaCy whenever it is
    initialised or loaded, so `displacy.render(doc, style="ent")` (and
    `style="span"`) draw them with no options or import. Pipelines saved
    before colours were stored get the ones `label_colors` gives their
    labels."""

    def set_label_colors(self) -> None:
        self.cfg["colors"] = label_colors(self.labels)
        register_displacy_colors(self.cfg["colors"])

    def from_disk(self, path, *, exclude=tuple()):
        super().from_disk(path, exclude=exclude)
        self._register_colors()
        return self

    def from_bytes(self, bytes_data, *, exclude=tuple()):
        super().from_bytes(bytes_data, exclude=exclude)
        self._register_colors()
        return self

    def _register_colors(self) -> None:
        if self.labels:
            register_displacy_colors(self.cfg.get("colors") or label_colors(self.labels))


def registered_colors() -> Dict[str, str]:
    """The colours register_displacy_colors has registered in this process (label → colour)."""
    from spacy.util import registry

    if REGISTRY_NAME not in registry.displacy_colors.get_all():
        return {}
    existing = registry.displacy_colors.get(REGISTRY_NAME)
    return dict(existing() if callable(existing) else existing)


def contrast_ratio(color: str, other: str) -> float:
    """WCAG 2 contrast ratio of two "#rrggbb" colours, from 1 (same) to 21."""
    high, low = sorted((_luminance(color), _luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def delta_e(color: str, other: str) -> float:
    """CIE76 colour difference of two "#rrggbb" colours in L*a*b* (2.3 is just noticeable)."""
    return math.dist(_lab(color), _lab(other))


class _Tiers:
    """The candidates still free for the next label, tier by tier: the wide
    pool at WIDE_DELTA_E, the fine pool at MIN_DELTA_E, then the fine pool at
    any distance. Placing a colour strikes out every candidate too close to it,
    so each label costs one walk along a pool, not a pool times the labels."""

    def __init__(self) -> None:
        fine = _candidate_pool()
        self.tiers = [(_wide_pool(), WIDE_DELTA_E), (fine, MIN_DELTA_E), (fine, 0.0)]
        self.free = [set(pool) for pool, _ in self.tiers]

    def place(self, color: str) -> None:
        lab = _lab(color)
        for (pool, min_delta), free in zip(self.tiers, self.free):
            free.difference_update([c for c in free if c == color or math.dist(_lab(c), lab) < min_delta])

    def first_free(self, label: str, taken: set) -> str:
        """The first free candidate from where the label's SHA-1 points on, in
        the first tier that has one; past ~490 generated labels, a colour
        derived from the hash until an unused one turns up."""
        start = int.from_bytes(hashlib.sha1(label.encode("utf8")).digest()[:8], "big")
        for (pool, _), free in zip(self.tiers, self.free):
            for step in range(len(pool) if free else 0):
                candidate = pool[(start + step) % len(pool)]
                if candidate in free and candidate not in taken:
                    return candidate
        salt = 0
        while True:
            digest = hashlib.sha1(f"{label}/{salt}".encode("utf8")).digest()
            candidate = _hls_hex(digest[0] / 256, 0.80 + digest[1] / 256 * 0.08, 0.5 + digest[2] / 256 * 0.5)
            if candidate not in taken and contrast_ratio(candidate, "#000000") >= MIN_CONTRAST:
                return candidate
            salt += 1


@lru_cache(maxsize=1)
def _candidate_pool() -> Tuple[str, ...]:
    """Light colours, hue-major so that walking on from a clash changes the hue
    a little before it changes the band; only those black text reads on at 7:1."""
    bands = ((1.0, 0.78), (0.9, 0.86), (0.7, 0.72), (0.6, 0.84), (0.95, 0.70), (0.5, 0.90), (0.4, 0.76))
    pool: Dict[str, None] = {}
    for hue in range(0, 360, 5):
        for saturation, lightness in bands:
            color = _hls_hex(hue / 360, lightness, saturation)
            if contrast_ratio(color, "#000000") >= MIN_CONTRAST:
                pool[color] = None
    return tuple(pool)


@lru_cache(maxsize=1)
def _wide_pool() -> Tuple[str, ...]:
    """The candidates kept, in pool order, when each must be WIDE_DELTA_E from all kept before it."""
    kept: List[str] = []
    for color in _candidate_pool():
        if all(delta_e(color, other) >= WIDE_DELTA_E for other in kept):
            kept.append(color)
    return tuple(kept)


def _hls_hex(hue: float, lightness: float, saturation: float) -> str:
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, saturation)
    return "#{:02x}{:02x}{:02x}".format(*(round(channel * 255) for channel in (red, green, blue)))


def _linear_rgb(color: str) -> Tuple[float, float, float]:
    channels = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return tuple(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)


def _luminance(color: str) -> float:
    red, green, blue = _linear_rgb(color)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


@lru_cache(maxsize=4096)
def _lab(color: str) -> Lab:
    """sRGB → CIE L*a*b* (D65)."""
    red, green, blue = _linear_rgb(color)
    x = (0.4124 * red + 0.3576 * green + 0.1805 * blue) / 0.95047
    y = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    z = (0.0193 * red + 0.1192 * green + 0.9505 * blue) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))
