"""Where `crf_ner`'s prediction time goes, stage by stage, on real texts.

    python -m benchmarks.profile_prediction MODEL [--texts FILE.jsonl] [--threads 1]
        [--batch-size 64] [--repeats 3] [--json OUT.json]

Runs the stages of `nlp.pipe` one after the other over the same batches and
times each (best of `repeats`): spaCy's tokenizer and Doc creation, the
character/bigram ids (hashing), the embedding tables, the BiGRU, attention,
the projection to tag scores, Viterbi, entity probabilities (forward-backward)
and `set_annotations`. The sum is checked against a timed `nlp.pipe` over the
same texts, so a stage left out would show as a gap. MODEL is a trained
pipeline whose `crf_ner` has the SequenceEncoder architecture.
"""
import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

from benchmarks.common import command_line, provenance
from benchmarks.speed import load_texts

STAGES = [
    ("tokenizer", "spaCy tokenizer and Doc creation"),
    ("char_ids", "character and bigram ids (hashing)"),
    ("embed", "embedding tables (HashEmbed lookups)"),
    ("pad", "padding into length buckets"),
    ("rnn", "BiGRU (with residual and layer norm)"),
    ("attention", "windowed attention (with residual and layer norm)"),
    ("unpad", "unpadding the encoder output"),
    ("projection", "projection to tag scores"),
    ("viterbi", "Viterbi decoding"),
    ("decode_spans", "tag ids to entity spans"),
    ("entity_probs", "entity probabilities (forward-backward)"),
    ("set_annotations", "set_annotations (doc.ents, doc.spans)"),
]


def profile(nlp, texts: List[str], batch_size: int) -> Dict[str, float]:
    import torch
    from thinc.api import torch2xp, xp2torch

    from spacy_medner.ml.encoder import length_buckets

    pipe = nlp.get_pipe("crf_ner")
    model = pipe.model
    encoder = model.get_ref("encoder")
    tok2vec, sequence = encoder.get_ref("tok2vec"), encoder.get_ref("sequence_encoder")
    char_ids, tables = tok2vec.layers[0], tok2vec.layers[1]
    module = sequence.shims[0].module.eval()
    output, decoder, scheme = model.get_ref("output"), pipe.decoder, pipe.tag_scheme
    ops = model.ops
    seconds: Dict[str, float] = defaultdict(float)

    def timed(stage, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        seconds[stage] += time.perf_counter() - start
        return result

    for i in range(0, len(texts), batch_size):
        docs = timed("tokenizer", lambda: [nlp.make_doc(t) for t in texts[i : i + batch_size]])
        ids = timed("char_ids", char_ids.predict, docs)
        vectors = timed("embed", tables.predict, ids)
        lengths = [len(v) for v in vectors]
        hidden = [None] * len(vectors)
        with torch.no_grad():
            for group in length_buckets(lengths):
                X = timed("pad", lambda: xp2torch(ops.pad([vectors[j] for j in group])))
                group_lengths = torch.tensor([lengths[j] for j in group])
                mask = torch.arange(X.shape[1]).unsqueeze(0) < group_lengths.unsqueeze(1)

                def rnn():
                    out = module.rnn(X, group_lengths)
                    out = out + module.rnn_skip(X) if module.rnn_skip is not None else out
                    return module.rnn_norm(out) if module.rnn_norm is not None else out

                H = timed("rnn", rnn)

                def attention():
                    if module.attention is None:
                        return H
                    out = module.attention(H, mask) + H if module.options["residual"] else module.attention(H, mask)
                    out = module.attention_norm(out) if module.attention_norm is not None else out
                    return out.masked_fill(~mask.unsqueeze(2), 0.0)

                Y = timed("attention", attention)
                for j, y in zip(group, timed("unpad", lambda: ops.unpad(torch2xp(Y), [lengths[j] for j in group]))):
                    hidden[j] = y
        emissions = timed("projection", lambda: [output.predict(h) for h in hidden])
        tags = timed("viterbi", decoder.decode, emissions)
        spans = timed("decode_spans", lambda: [scheme.decode(ops.to_numpy(t)) for t in tags])
        predictions = [{"spans": s} for s in spans]
        if pipe.spans_key:
            scores = timed("entity_probs", decoder.entity_probabilities, emissions, spans, scheme, pipe.cfg.get("temperature", 1.0))
            for prediction, s in zip(predictions, scores):
                prediction["scores"] = s
        timed("set_annotations", pipe.set_annotations, docs, predictions)
    return dict(seconds)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--texts", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import spacy
    import torch

    torch.set_num_threads(args.threads)
    source, texts = load_texts(args.texts)
    n_chars = sum(len(t) for t in texts)
    nlp = spacy.load(args.model)
    list(nlp.pipe(texts[:32]))
    best: Dict[str, float] = {}
    pipe_best = float("inf")
    for _ in range(args.repeats):
        for stage, s in profile(nlp, texts, args.batch_size).items():
            best[stage] = min(best.get(stage, float("inf")), s)
        start = time.perf_counter()
        for _ in nlp.pipe(texts, batch_size=args.batch_size):
            pass
        pipe_best = min(pipe_best, time.perf_counter() - start)
    total = sum(best.values())
    print(f"texts: {source.name}, {len(texts)} docs, {n_chars:,} chars; {args.threads} thread(s), batch {args.batch_size}, best of {args.repeats}")
    print(f"{'stage':<52} {'seconds':>8} {'share':>6}")
    for stage, title in STAGES:
        if stage in best:
            print(f"{title:<52} {best[stage]:8.3f} {best[stage] / total:6.1%}")
    print(f"{'sum of stages':<52} {total:8.3f} ({n_chars / total:,.0f} chars/s)")
    print(f"{'nlp.pipe, same texts':<52} {pipe_best:8.3f} ({n_chars / pipe_best:,.0f} chars/s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        summary = {
            "command": command_line(__spec__.name, argv), **provenance(), "model": args.model, "texts": source.name,
            "docs": len(texts), "chars": n_chars, "threads": args.threads, "batch_size": args.batch_size,
            "repeats": args.repeats, "stages": [{"stage": s, "title": t, "seconds": round(best[s], 4)} for s, t in STAGES if s in best],
            "pipe_seconds": round(pipe_best, 4),
        }
        args.json.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
