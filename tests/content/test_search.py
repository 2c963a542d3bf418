"""Search as citizens type: each ranking rule, 1-, 2- and 3-character queries, initials,
full pinyin, English and everyday words."""

import pytest

from kiosq.content.catalog import SAMPLE, load_files, write_catalog
from kiosq.content.search import (
    CONTAINS,
    EXACT,
    KEYWORD,
    KEYWORD_PINYIN,
    PINYIN_CONTAINS,
    PINYIN_PREFIX,
    PREFIX,
    TEXT,
    Searcher,
)


@pytest.fixture
def searcher(catalog_db):
    with Searcher(catalog_db) as s:
        yield s


def ranked(searcher, query, **kw):
    return [(h.code, h.score) for h in searcher.search(query, **kw)]


def test_exact_name_beats_prefix_beats_contains(searcher):
    assert ranked(searcher, "居民身份证换领")[0] == ("GA-SFZ-001", EXACT)
    assert ranked(searcher, "居民身份证")[:3] == [
        ("GA-SFZ-001", PREFIX), ("GA-SFZ-002", PREFIX), ("GA-SFZ-003", CONTAINS)]
    # then the items whose text names the 居民身份证法 or asks for the card
    assert {s for _, s in ranked(searcher, "居民身份证")[3:]} == {TEXT}


@pytest.mark.parametrize("query", ["sfz", "SFZ", "shenfenzheng", "shen fen zheng", "Shen Fen Zheng"])
def test_initials_and_full_pinyin_find_the_id_card_items(searcher, query):
    assert [code for code, _ in ranked(searcher, query)][:3] == ["GA-SFZ-001", "GA-SFZ-002", "GA-SFZ-003"]
    assert {score for _, score in ranked(searcher, query)[:3]} == {PINYIN_CONTAINS}


def test_initials_from_the_start_of_a_name_rank_above_inside(searcher):
    assert ranked(searcher, "jmsfz")[:2] == [("GA-SFZ-001", PINYIN_PREFIX), ("GA-SFZ-002", PINYIN_PREFIX)]
    assert ranked(searcher, "jmsfz")[2] == ("GA-SFZ-003", PINYIN_CONTAINS)


def test_everyday_words_find_the_official_item(searcher):
    assert ranked(searcher, "户口")[0] == ("GA-HJ-001", KEYWORD)  # the item is called 户籍迁入
    assert ranked(searcher, "hukou")[0] == ("GA-HJ-001", KEYWORD_PINYIN)
    assert ranked(searcher, "领证")[0] == ("MZ-HY-001", KEYWORD)


def test_english_names(searcher):
    assert ranked(searcher, "passport")[0] == ("GA-CRJ-001", CONTAINS)
    assert ranked(searcher, "Marriage registration")[0] == ("MZ-HY-001", EXACT)


def test_one_and_two_character_queries(searcher):
    one = ranked(searcher, "证")
    assert one[:3] == [("GA-SFZ-001", CONTAINS), ("GA-SFZ-002", CONTAINS), ("GA-SFZ-003", CONTAINS)]
    assert ("GJJ-001", TEXT) in one  # 证 only in its text (身份证, in the basis... or materials)
    two = ranked(searcher, "照片")  # only in the materials list
    assert len(two) == 8 and {s for _, s in two} == {TEXT}


def test_three_characters_and_more_use_the_trigram_index(searcher):
    found = ranked(searcher, "户口簿")  # in every item's materials
    assert len(found) == 8 and {s for _, s in found} == {TEXT}
    assert [code for code, _ in found] == [i for i in [  # catalog order
        "GA-SFZ-001", "GA-SFZ-002", "GA-SFZ-003", "GA-HJ-001", "GA-CRJ-001", "GJJ-001", "MZ-HY-001", "SC-DJ-001"]]
    assert ranked(searcher, "法定婚龄") == [("MZ-HY-001", TEXT)]


def test_department_filter_and_nothing_found(searcher):
    assert ranked(searcher, "登记", department="民政局") == [("MZ-HY-001", CONTAINS)]
    assert ranked(searcher, "xyzzy") == []
    assert ranked(searcher, "   ") == []
    assert searcher.departments() == ["公安局", "住房公积金管理中心", "民政局", "市场监督管理局"]


def test_quotes_and_fts_syntax_are_plain_text(searcher):
    assert ranked(searcher, '"护照" OR *') == []
    assert ranked(searcher, "护照")[0][0] == "GA-CRJ-001"


def test_sfz_on_the_sample_catalog_puts_the_id_card_items_first(tmp_path):
    db = tmp_path / "sample.sqlite"
    write_catalog(db, load_files(SAMPLE))
    with Searcher(db) as s:
        hits = s.search("sfz", limit=5)
    id_items = [h for h in hits if "身份证" in h.name]
    assert len(id_items) >= 3 and hits[:len(id_items)] == id_items


def test_one_typed_letter_finds_names_that_start_with_it(searcher):
    # "j" is inside many pinyin strings; only 结婚登记 (jiehun…) and 居民身份证… (jumin…) start with it
    found = ranked(searcher, "j")
    assert found == [("MZ-HY-001", PINYIN_PREFIX), ("GA-SFZ-001", PINYIN_PREFIX), ("GA-SFZ-002", PINYIN_PREFIX)]


def test_full_width_letters_and_control_characters(searcher):
    assert ranked(searcher, "ｓｆｚ") == ranked(searcher, "sfz")  # as a Chinese input method types them
    assert ranked(searcher, "\x00") == [] and ranked(searcher, "护\x00照")[0][0] == "GA-CRJ-001"
    assert ranked(searcher, "a\x00b") == ranked(searcher, "ab")
