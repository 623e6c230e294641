"""Recall on test mentions that the training split holds and on those it does not.

    python -m benchmarks.seen_mentions CORPUS SYSTEM [SYSTEM ...] [--models training/bench] [--data corpus/bench]
        [--seed 0] [--batch-size 64]

A dev split carved from the training file shares more of its mentions with
training than an archive's own test split does, so a feature that helps with
unseen names can move test F1 while dev stays level (MSRA, notes.md). This
prints, per type, the share of dev and of test mentions whose (type, text)
occurs in training, then each system's exact recall on the seen and on the
unseen test mentions. The systems are the kept models (model-best) that
`python -m benchmarks.accuracy CORPUS --systems SYSTEM` trained; they are re-run on
the test texts with `nlp.pipe`.
"""
import argparse
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Set, Tuple

import spacy
from spacy.tokens import Doc, DocBin

from benchmarks.common import ROOT
from benchmarks.scoring import entity_set
from benchmarks.systems import SYSTEMS, seeded

Mention = Tuple[str, str]  # (label, text)


def read_docs(path: Path, vocab) -> List[Doc]:
    return list(DocBin().from_disk(path).get_docs(vocab))


def mentions(docs: Iterable[Doc]) -> Set[Mention]:
    return {(ent.label_, ent.text) for doc in docs for ent in doc.ents}


def seen_share(docs: Iterable[Doc], training: Set[Mention]) -> Dict[str, Tuple[int, int]]:
    """Per label: (mentions whose label and text occur in training, all mentions)."""
    seen, total = Counter(), Counter()
    for doc in docs:
        for ent in doc.ents:
            total[ent.label_] += 1
            seen[ent.label_] += (ent.label_, ent.text) in training
    return {label: (seen[label], total[label]) for label in sorted(total)}


def recall_by_seen(gold: List[Doc], predicted: List[Doc], training: Set[Mention]) -> Dict[Tuple[str, bool], Tuple[int, int]]:
    """Per (label, seen in training): (gold mentions predicted exactly, gold mentions)."""
    if [doc.text for doc in gold] != [doc.text for doc in predicted]:
        raise ValueError("[spacy_medner] the predicted docs are not the gold docs' texts, in order")
    predicted_entities = entity_set(predicted)  # matched exactly as benchmarks.scoring scores
    found, total = Counter(), Counter()
    for i, doc in enumerate(gold):
        for ent in doc.ents:
            key = (ent.label_, (ent.label_, ent.text) in training)
            total[key] += 1
            found[key] += (i, ent.start_char, ent.end_char, ent.label_) in predicted_entities
    return {key: (found[key], total[key]) for key in sorted(total)}


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}" if whole else "—"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus")
    parser.add_argument("systems", nargs="+", choices=[name for name, s in SYSTEMS.items() if s.config],
                        metavar="SYSTEM", help="crf_ner and spaCy rows of benchmarks/systems.py")
    parser.add_argument("--seed", type=int, default=0, help="the seed the systems were trained with")
    parser.add_argument("--models", type=Path, default=ROOT / "training" / "bench")
    parser.add_argument("--data", type=Path, default=ROOT / "corpus" / "bench")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    data = args.data / args.corpus
    models = {system: args.models / args.corpus / seeded(system, args.seed) / "model-best" for system in args.systems}
    for path in [data / "train.spacy", data / "dev.spacy", *models.values()]:
        if not path.exists():
            systems = ",".join(args.systems)
            parser.error(f"{path} does not exist: run `python -m benchmarks.accuracy {args.corpus} --systems {systems} --seed {args.seed}` first")
    vocab = spacy.blank("zh").vocab
    training = mentions(read_docs(data / "train.spacy", vocab))
    tests = {path.stem[len("test-"):]: read_docs(path, vocab) for path in sorted(data.glob("test-*.spacy"))}
    print(f"{args.corpus}: share of mentions whose type and text occur in the training split")
    for split, docs in [("dev", read_docs(data / "dev.spacy", vocab)), *((f"test {name}", docs) for name, docs in tests.items())]:
        shares = ", ".join(f"{label} {pct(*counts)}% of {counts[1]}" for label, counts in seen_share(docs, training).items())
        print(f"  {split}: {shares}")
    for system, path in models.items():
        nlp = spacy.load(path)
        for name, gold in tests.items():
            predicted = list(nlp.pipe((doc.text for doc in gold), batch_size=args.batch_size))
            recall = recall_by_seen(gold, predicted, training)
            print(f"{system}, test {name}: exact recall on seen / unseen mentions")
            for label in sorted({label for label, _ in recall}):
                seen, unseen = recall.get((label, True), (0, 0)), recall.get((label, False), (0, 0))
                print(f"  {label}: {pct(*seen)} of {seen[1]} / {pct(*unseen)} of {unseen[1]}")


if __name__ == "__main__":
    main()
