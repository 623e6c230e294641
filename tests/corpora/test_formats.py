import json
import zipfile

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_medner.corpora.build import SOURCE_KEY
from spacy_medner.corpora.convert import convert
from spacy_medner.corpora.records import ConversionError


def docs_of(docbin):
    return list(docbin.get_docs(spacy.blank("zh").vocab))


def ents_of(docbin):
    return [[(e.text, e.label_) for e in doc.ents] for doc in docs_of(docbin)]


def write(path, text, encoding="utf8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_ccks2019_bom_exclusive_end_and_trimming(tmp_path):
    line = {"originalText": "患者口服替吉奥 后复查", "entities": [{"label_type": "药物", "start_pos": 4, "end_pos": 8}]}
    path = write(tmp_path / "a.txt", "\ufeff" + json.dumps(line, ensure_ascii=False) + "\n")
    train, _, report = convert("ccks2019", [path])
    assert ents_of(train) == [[("替吉奥", "药物")]]
    assert report.change_counts == {"trimmed": 1}
    assert report.changes[0]["text"] == "替吉奥 "


def test_cmeee_inclusive_end_and_nesting(tmp_path):
    records = [{"text": "患者左下肢疼痛明显", "entities": [
        {"start_idx": 2, "end_idx": 4, "type": "bod", "entity": "左下肢"},
        {"start_idx": 2, "end_idx": 6, "type": "sym", "entity": "左下肢疼痛"},
    ]}]
    path = write(tmp_path / "dev.json", json.dumps(records, ensure_ascii=False, indent=2))
    train, _, report = convert("cmeee", [path])
    doc = docs_of(train)[0]
    assert [(e.text, e.label_) for e in doc.ents] == [("左下肢疼痛", "sym")]
    assert sorted((s.text, s.label_) for s in doc.spans["sc"]) == [("左下肢", "bod"), ("左下肢疼痛", "sym")]
    assert report.change_counts == {"span_group_only": 1}
    assert "nested in sym" in report.changes[0]["reason"]


def test_brat_folder_zip_and_discontinuous(tmp_path):
    folder = tmp_path / "brat"
    folder.mkdir()
    write(folder / "1.txt", "口服阿司匹林，复查血常规")
    write(folder / "1.ann", "T1\tDRUG 2 6\t阿司匹林\nT2\tTEST 9 12\t血常规\nR1\tRel Arg1:T1 Arg2:T2\n")
    write(folder / "2.txt", "左 侧下肢")
    write(folder / "2.ann", "T1\tBODY 0 1;3 5\t左 下肢\n")
    archive = tmp_path / "brat.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in folder.iterdir():
            z.write(f, f"train/{f.name}")
    for source in (folder, archive):
        train, _, report = convert("brat", [source])
        assert ents_of(train) == [[("阿司匹林", "DRUG"), ("血常规", "TEST")], [("左", "BODY"), ("下肢", "BODY")]]
        assert report.change_counts == {"split": 1}
        assert report.extra["brat_ignored_annotation_lines"] == {"R": 1}


def test_conll_bio_bioes_crlf_and_repairs(tmp_path):
    text = "口\tO\r\n服\tO\r\n阿\tB-DRUG\r\n司\ti-DRUG\r\n林\tI-DRUG\r\n \r\n血\tS-TEST\r\n常\tO-TEST\r\n规\tI-TEST\r\n\r\n \tO\r\n肺\tB-BODY\r\n部\tE-BODY\r\n"
    path = write(tmp_path / "a.conll", text)
    train, _, report = convert("conll", [path])
    assert ents_of(train) == [[("阿司林", "DRUG")], [("血", "TEST"), ("规", "TEST")], [("肺部", "BODY")]]
    reasons = [c["reason"] for c in report.changes]
    assert report.change_counts == {"tag_repaired": 3}
    assert any("lower-case" in r for r in reasons) and any("'O-' prefix" in r for r in reasons)
    assert any("does not continue" in r for r in reasons)
    with pytest.raises(ConversionError, match=r"a.conll, line 4: malformed tag 'i-DRUG'"):
        convert("conll", [path], reader_options={"bad_tags": "reject"})


def healthner_line(id, chars, labels, **extra):
    record = {"id": id, "genre": "ft", "sentence": "".join(chars), "character": list(chars), "character_label": labels, **extra}
    return json.dumps(record, ensure_ascii=False)


def test_healthner_json_lines_repairs_tags_like_conll(tmp_path):
    lines = [
        healthner_line("00000", "骨骼含鈣", ["B-BODY", "I-BODY", "O", "B-CHEM"]),
        healthner_line("00001", "頭痛發燒", ["B-SYMP", "i-SYMP", "O-SYMP", "I-SYMP"]),
    ]
    path = write(tmp_path / "test.json", "\n".join(lines) + "\n")
    train, _, report = convert("healthner", [path])
    assert ents_of(train) == [[("骨骼", "BODY"), ("鈣", "CHEM")], [("頭痛", "SYMP"), ("燒", "SYMP")]]
    assert report.change_counts == {"tag_repaired": 3}
    assert {c["record"] for c in report.changes} == {"test.json:00001"}
    with pytest.raises(ConversionError, match=r"test.json, line 2, character 1: malformed tag 'i-SYMP'"):
        convert("healthner", [path], reader_options={"bad_tags": "reject"})
    unreadable = write(tmp_path / "tags.json", healthner_line("0", "骨骼", ["B-BODY", "BODY"]))
    with pytest.raises(ConversionError, match=r"tags.json, line 1, character 1: unreadable tag 'BODY'"):
        convert("healthner", [unreadable])
    mismatch = write(tmp_path / "bad.json", healthner_line("0", "骨骼", ["B-BODY"]))
    with pytest.raises(ConversionError, match=r"bad.json, line 1: 2 characters but 1 character labels"):
        convert("healthner", [mismatch])


def test_zip_member_path_selects_one_member(tmp_path):
    archive = tmp_path / "corpus.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("corpus_train", "口\tO\n服\tO\n阿\tB-DRUG\n司\tI-DRUG\n")
        z.writestr("corpus_test", "血\tB-TEST\n常\tI-TEST\n")
    assert ents_of(convert("conll", [archive])[0]) == [[("血常", "TEST")], [("阿司", "DRUG")]]
    assert ents_of(convert("conll", [archive / "corpus_train"])[0]) == [[("阿司", "DRUG")]]
    with pytest.raises(ConversionError, match=r"corpus.zip: has no member 'corpus_dev'"):
        convert("conll", [archive / "corpus_dev"])


def test_doccano_and_prodigy(tmp_path):
    doccano = write(tmp_path / "d.jsonl", json.dumps({"text": "行直肠癌根治术", "label": [[1, 7, "手术"], [1, 4, "疾病和诊断"]]}, ensure_ascii=False) + "\n")
    train, _, _ = convert("doccano", [doccano])
    doc = docs_of(train)[0]
    assert [(e.text, e.label_) for e in doc.ents] == [("直肠癌根治术", "手术")]
    assert len(doc.spans["sc"]) == 2
    lines = [
        {"text": "口服阿司匹林", "spans": [{"start": 2, "end": 6, "label": "药物"}], "answer": "accept"},
        {"text": "口服布洛芬", "spans": [{"start": 2, "end": 5, "label": "药物"}], "answer": "reject"},
        {"text": "无异常"},
    ]
    prodigy = write(tmp_path / "p.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines))
    train, _, report = convert("prodigy", [prodigy])
    assert ents_of(train) == [[("阿司匹林", "药物")], []]
    assert report.records_skipped == 1
    # A record without entities is annotated as all-O, not as missing.
    assert all(t.ent_iob_ == "O" for t in docs_of(train)[1])


def test_segments_keep_source_and_offsets(tmp_path):
    text = "患者口服阿司匹林。" * 10 + "复查血常规。"
    ents = [[i * 9 + 4, i * 9 + 8, "药物"] for i in range(10)] + [[92, 95, "实验室检验"]]
    path = write(tmp_path / "d.jsonl", json.dumps({"id": "r1", "text": text, "label": ents}, ensure_ascii=False))
    train, _, report = convert("doccano", [path], max_length=20)
    docs = docs_of(train)
    assert all(len(d.text) <= 20 for d in docs) and len(docs) == report.segments > 1
    assert "".join(d.text for d in docs) == text
    for doc in docs:
        source = doc.user_data[SOURCE_KEY]
        assert source["id"] == "r1"
        for ent in doc.ents:
            assert text[source["offset"] + ent.start_char : source["offset"] + ent.end_char] == ent.text
    assert sum(len(d.ents) for d in docs) == 11


def test_deterministic_dev_split(tmp_path):
    lines = [json.dumps({"text": f"病例{i}口服阿司匹林", "label": [[len(f"病例{i}") + 2, len(f"病例{i}") + 6, "药物"]]}, ensure_ascii=False) for i in range(50)]
    path = write(tmp_path / "d.jsonl", "\n".join(lines))
    first = convert("doccano", [path], dev_ratio=0.2, seed=3)
    again = convert("doccano", [path], dev_ratio=0.2, seed=3)
    other = convert("doccano", [path], dev_ratio=0.2, seed=4)
    texts = lambda b: [d.text for d in docs_of(b)]  # noqa: E731
    assert texts(first[1]) == texts(again[1]) and len(texts(first[1])) == 10
    assert texts(first[1]) != texts(other[1])
    assert not set(texts(first[0])) & set(texts(first[1]))


def test_docbin_round_trip_keeps_everything(tmp_path):
    records = [{"text": "左下肢疼痛", "entities": [
        {"start_idx": 0, "end_idx": 2, "type": "bod", "entity": "左下肢"},
        {"start_idx": 0, "end_idx": 4, "type": "sym", "entity": "左下肢疼痛"}]}]
    path = write(tmp_path / "dev.json", json.dumps(records, ensure_ascii=False))
    train, _, _ = convert("cmeee", [path])
    reloaded = DocBin().from_bytes(train.to_bytes())
    doc = docs_of(reloaded)[0]
    assert len(doc.spans["sc"]) == 2 and len(doc.ents) == 1 and doc.user_data[SOURCE_KEY]["id"] == "dev.json:0"
