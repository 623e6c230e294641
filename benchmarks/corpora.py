"""The benchmark corpora: where they are read from and how they are split.

Each corpus becomes `<out>/<name>/train.spacy`, `dev.spacy` and one
`test-<set>.spacy` per test set, plus `splits.json` (records and entities per
split, and every change the converters made). Splits are by record with a
fixed seed, so segments of one record never straddle two splits. Training
records are segmented at sentence ends to `max_length` characters; test
records too (segments never cut an entity, so exact-match scores are those of
the whole records).

Nested entities (CMeEE): the converters put the longest outer span in
`doc.ents` and keep every span in `doc.spans["sc"]`. crf_ner is a flat tagger,
so it is trained and scored on `doc.ents`: inner mentions are neither learned
nor counted. splits.json says how many mentions that leaves out.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from spacy_medner.corpora.build import split_records
from spacy_medner.corpora.convert import read_records, to_docbin
from spacy_medner.corpora.report import ConversionReport

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
Source = Tuple[str, List[str]]  # (format, paths relative to the corpus folder)


@dataclass
class BenchCorpus:
    name: str
    folder: Path
    train: List[Source]
    tests: Dict[str, Source] = field(default_factory=dict)
    test_ratio: float = 0.0  # carve the test split from the training records
    dev_ratio: float = 0.1  # carve dev from what remains for training
    note: str = ""


def bench_corpora(shared: Path = SHARED) -> Dict[str, BenchCorpus]:
    return {
        c.name: c
        for c in [
            BenchCorpus(
                "ccks2019", shared / "ccks2019" / "raw",
                train=[("ccks2019", ["subtask1_training_part1.txt", "subtask1_training_part2.txt"])],
                tests={"test": ("ccks2019", ["subtask1_test_set_with_answer.json"])},
                note="official 1000 / 379 split; dev is 10% of train (seed 0)",
            ),
            BenchCorpus(
                "tcm_manual", shared / "tcm_manual" / "raw", train=[("brat", ["round1_train.zip"])], test_ratio=0.2,
                note="1000 labelled documents, 80/20 by document (seed 0); dev is 10% of the 80%",
            ),
            BenchCorpus(
                "rocling", shared / "rocling" / "raw",
                train=[("conll", ["ROCLING22_CHNER_truth.txt"]), ("healthner", ["test.json"])],
                tests={g: ("conll", [f"MultiNER-Health_truth_{g}.txt"]) for g in ("FT", "SM", "WA")},
                note="train ROCLING22 truth + HealthNER test.json; test MultiNER-Health FT/SM/WA, macro over genres",
            ),
            BenchCorpus(
                "msra", shared / "msra" / "raw", train=[("conll", ["MSRA.zip/msra_train_bio"])],
                tests={"test": ("conll", ["MSRA.zip/msra_test_bio"])}, dev_ratio=0.05,
                note="the archive's train/test split; dev is 5% of train (seed 0)",
            ),
            BenchCorpus(
                "cmeee", shared / "cmeee" / "raw", train=[("cmeee", ["CMeEE-V2_dev.json"])], test_ratio=0.2,
                note="CMeEE-V2 dev (5000 records), 80/20 by record (seed 0); nested: longest outer span in doc.ents, "
                "inner mentions kept in doc.spans['sc'] but not scored",
            ),
        ]
    }


def demo_corpus() -> BenchCorpus:
    """The embedded demo corpus, for the CI smoke run."""
    return BenchCorpus(
        "demo", ROOT / "assets" / "demo", train=[("doccano", ["train.jsonl"])], tests={"test": ("doccano", ["dev.jsonl"])},
        note="embedded demo corpus (smoke run only)",
    )


def prepare(corpus: BenchCorpus, out: Path, max_length: int = 256, seed: int = 0, limit: Optional[int] = None) -> Path:
    """Write the corpus's DocBins under out/<name>; returns that folder.
    `limit` keeps only the first records of each split (smoke runs)."""
    if not corpus.folder.exists():
        raise FileNotFoundError(f"corpus {corpus.name!r} not found at {corpus.folder} (the research corpora live in ../shared)")
    target = out / corpus.name
    target.mkdir(parents=True, exist_ok=True)
    summary = {"corpus": corpus.name, "note": corpus.note, "seed": seed, "max_length": max_length, "splits": {}}
    train_report = ConversionReport(format="+".join(f for f, _ in corpus.train), inputs=[])
    records = []
    for fmt, paths in corpus.train:
        inputs = [corpus.folder / p for p in paths]
        train_report.inputs += [str(p) for p in inputs]
        records += read_records(fmt, inputs, train_report, {"bad_tags": "repair"} if fmt in ("conll", "healthner") else None)
    splits = {}
    if corpus.test_ratio:
        records, splits["test-test"] = split_records(records, corpus.test_ratio, seed)
    splits["train"], splits["dev"] = split_records(records, corpus.dev_ratio, seed)
    for name, split in splits.items():
        _write(target, name, split[:limit], max_length, summary, train_report.format, train_report.inputs, train_report.changes)
    for test_name, (fmt, paths) in corpus.tests.items():
        report = ConversionReport(format=fmt, inputs=[str(corpus.folder / p) for p in paths])
        split = read_records(fmt, [corpus.folder / p for p in paths], report, {"bad_tags": "repair"} if fmt in ("conll", "healthner") else None)
        _write(target, f"test-{test_name}", split[:limit], max_length, summary, fmt, report.inputs, report.changes)
    (target / "splits.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf8")
    return target


def _write(target: Path, name: str, records, max_length: int, summary: Dict, fmt: str, inputs: List[str], read_changes: List) -> None:
    report = ConversionReport(format=fmt, inputs=inputs)
    ids = {r.id for r in records}
    report.changes = [c for c in read_changes if c["record"] in ids]  # repairs made while reading these records
    to_docbin(records, report, max_length=max_length).to_disk(target / f"{name}.spacy")
    d = report.to_dict()
    summary["splits"][name] = {
        "inputs": inputs, "records": len(records), "segments": d["segments"], "entities_in": d["entities_in"],
        "ents_out": d["ents_out"], "spans_out": d["spans_out"], "changes": d["change_counts"],
    }
