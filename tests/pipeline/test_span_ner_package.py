"""A trained span_ner pipeline as an installable package: `spacy package`,
`pip install` of the wheel, and `spacy.load(name)` in a fresh process that
never imports spacy_medner, predicting the nested mentions with the same
scores as the pipeline it was built from."""
import json
import subprocess
import sys

import pytest
import spacy

from ..io.trained_span import TEXTS, trained_span_pipeline

PACKAGE = "zh_test_span_package"

SCRIPT = r"""
import json, sys
import spacy
nlp = spacy.load(sys.argv[1])  # no import of spacy_medner: the factory comes from its entry points
out = []
for doc in nlp.pipe(json.loads(sys.argv[2])):
    group = doc.spans["sc"]
    out.append([[s.start, s.end, s.label_, round(float(p), 4)] for s, p in zip(group, group.attrs["scores"])])
print(json.dumps(out))
"""


def mentions(nlp, texts):
    out = []
    for doc in nlp.pipe(texts):
        group = doc.spans["sc"]
        out.append([[s.start, s.end, s.label_, round(float(p), 4)] for s, p in zip(group, group.attrs["scores"])])
    return out


@pytest.mark.slow
def test_packaged_span_ner_predicts_the_nested_mentions(tmp_path):
    from spacy.cli.package import package

    source = trained_span_pipeline()
    nlp = spacy.load(source)
    nlp.meta["name"] = PACKAGE.split("_", 1)[1]
    nlp.meta["version"] = "0.0.1"
    nlp.to_disk(tmp_path / "pipeline")
    expected = mentions(nlp, TEXTS)
    nested = lambda doc: any(a[0] <= b[0] and b[1] <= a[1] and a[:2] != b[:2] for a in doc for b in doc)  # noqa: E731
    assert any(nested(doc) for doc in expected), expected  # the reference holds nested mentions
    (tmp_path / "packages").mkdir()
    package(tmp_path / "pipeline", tmp_path / "packages", create_wheel=True, create_sdist=False, force=True, silent=True)
    wheels = list((tmp_path / "packages").rglob("*.whl"))
    assert len(wheels) == 1, wheels
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", str(wheels[0])], check=True)
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT, PACKAGE, json.dumps(TEXTS, ensure_ascii=False)],
            capture_output=True, text=True, cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert json.loads(result.stdout.strip().splitlines()[-1]) == expected
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", PACKAGE], capture_output=True)
