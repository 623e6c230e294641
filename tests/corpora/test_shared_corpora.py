"""The real corpora in ../shared convert without losing an entity.
Skipped, with the reason, where ../shared is absent."""
import pytest

from spacy_medner.corpora.convert import convert

from ..conftest import shared_corpus


def totals(report):
    d = report.to_dict()
    return d["entities_in"], d["ents_out"], d["spans_out"]


def test_ccks2019_loses_nothing():
    raw = shared_corpus("ccks2019")
    _, _, train = convert("ccks2019", [raw / "subtask1_training_part1.txt", raw / "subtask1_training_part2.txt"])
    assert (train.records, totals(train)) == (1000, (17653, 17653, 17653))
    assert train.change_counts == {"trimmed": 19 + 68}
    _, _, test = convert("ccks2019", [raw / "subtask1_test_set_with_answer.json"], max_length=256)
    assert (test.records, totals(test)) == (379, (6002, 6002, 6002))


def test_tcm_manual_zip():
    _, _, report = convert("brat", [shared_corpus("tcm_manual") / "round1_train.zip"], max_length=256)
    assert (report.records, totals(report)) == (1000, (17757, 17757, 17757))
    assert report.segments > 1000 and not report.changes


def test_cmeee_keeps_every_mention():
    _, _, report = convert("cmeee", [shared_corpus("cmeee") / "CMeEE-V2_dev.json"])
    entities_in, ents, spans = totals(report)
    assert entities_in == spans == 26081
    assert ents + report.change_counts["span_group_only"] == 26081
    assert report.change_counts == {"span_group_only": 4522 + 4}


def test_rocling_malformed_tags_are_repaired_and_counted():
    raw = shared_corpus("rocling")
    _, _, report = convert("conll", [raw / "ROCLING22_CHNER_truth.txt"])
    assert (report.records, totals(report)) == (3205, (13378, 13378, 13378))
    assert report.change_counts == {"tag_repaired": 8}
    for genre, n in (("FT", 10849), ("SM", 8292), ("WA", 9761)):
        _, _, r = convert("conll", [raw / f"MultiNER-Health_truth_{genre}.txt"])
        assert totals(r) == (n, n, n)


def test_healthner_test_json():
    _, _, report = convert("healthner", [shared_corpus("rocling") / "test.json"])
    assert (report.records, totals(report)) == (2531, (7305, 7305, 7305))
    assert not report.changes


@pytest.mark.slow
def test_msra_zip():
    _, _, report = convert("conll", [shared_corpus("msra") / "MSRA.zip"])
    assert (report.records, totals(report)) == (45000 + 3442, (75059 + 6190,) * 3)


def test_msra_zip_member_is_the_official_test_split():
    _, _, report = convert("conll", [shared_corpus("msra") / "MSRA.zip" / "msra_test_bio"])
    assert (report.records, totals(report)) == (3442, (6190,) * 3)
