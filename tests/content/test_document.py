"""The printable guide: every section the hall publishes, a checklist of materials."""

from kiosq.content.document import as_text, guide_document
from kiosq.content.model import parse_catalog


def test_guide_document_in_chinese(catalog_data):
    doc = guide_document(parse_catalog(catalog_data)[0])
    assert (doc.title, doc.code) == ("居民身份证换领", "GA-SFZ-001")
    headings = [s.heading for s in doc.sections]
    assert headings == ["申请条件", "申请材料", "办理流程", "办理时限", "收费标准", "办理地点", "咨询电话",
                        "到现场次数", "设定依据"]
    materials = doc.sections[1].checklist
    assert materials[0].text == "居民户口簿（原件，1 份）"
    assert materials[1].text == "近期免冠彩色照片（原件，2 份）（如有）" and materials[1].note == "现场采集的可不提供"
    text = as_text(doc)
    assert "☐ 居民户口簿（原件，1 份）" in text
    assert "承诺时限 30 个工作日" in text and "法定时限 60 个工作日" in text
    assert "工本费 20.00 元" in text and "可在自助终端申报" in text


def test_free_and_on_the_spot_items_and_english(catalog_data):
    items = parse_catalog(catalog_data)
    marriage = as_text(guide_document(items[6]))
    assert "不收费" in marriage and "即办" in marriage and "法定时限" not in marriage
    english = as_text(guide_document(items[4], "en"))
    assert english.startswith("Issue of an ordinary passport")
    assert "[What to bring]" in english and "CNY 120.00" in english and "promised 30 working days" in english
