"""The one masking rule: each kind of personal data masked its own way, and a form
field's value masked by what the field is (its type, what it is prefilled from, its name)."""

from dataclasses import dataclass

import pytest

from kiosq.base.privacy import mask_field_value, mask_id_number, mask_name, mask_phone, mask_text


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "text"
    prefill: str | None = None
    pattern: str | None = None


@pytest.mark.parametrize("number, masked", [
    ("110101199003071234", "110***********1234"), ("11010119900307123x", "110***********123X"),
    ("110 101 199003071234", "110***********1234"), ("1234567", "*******"), ("", ""),
])
def test_an_id_number_keeps_its_first_3_and_last_4(number, masked):
    assert mask_id_number(number) == masked


@pytest.mark.parametrize("name, masked", [("王小明", "王*明"), ("欧阳小明", "欧**明"), ("王明", "王*"),
                                          ("王", "王*"), ("  ", "")])
def test_a_name_keeps_its_first_and_last_character(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize("phone, masked", [("13812345678", "138****5678"), ("0571 8765 4321", "057*****4321"),
                                           ("1234", "****")])
def test_a_phone_keeps_its_first_3_and_last_4_digits(phone, masked):
    assert mask_phone(phone) == masked


def test_free_text_keeps_its_first_6_characters():
    assert mask_text("浙江省杭州市上城区解放路1号") == "浙江省杭州市******"
    assert mask_text("1990-01-01") == "1990-0****"
    assert mask_text("杭州") == "杭州"


@pytest.mark.parametrize("field, value, shown", [
    (Field("id_number", type="id_number"), "110101199003071234", "110***********1234"),
    (Field("holder", prefill="id_number"), "110101199003071234", "110***********1234"),
    (Field("phone", type="phone"), "13812345678", "138****5678"),
    (Field("applicant_name", prefill="name"), "王小明", "王*明"),
    (Field("home", prefill="address"), "浙江省杭州市上城区解放路1号", "浙江省杭州市******"),
    (Field("mail_address"), "浙江省杭州市上城区解放路1号", "浙江省杭州市******"),
    (Field("born", type="date", prefill="birth"), "1990-03-07", "1990-0****"),
    (Field("bank_account", pattern="[0-9]{16,19}"), "6222020200112233445", "***************3445"),
    (Field("bank_name"), "示例银行", "示例银行"),
    (Field("start", type="date"), "2026-01-01", "2026-01-01"),
    (Field("nation", prefill="nation"), "汉", "汉"),
])
def test_a_form_value_is_masked_by_what_its_field_holds(field, value, shown):
    assert mask_field_value(field, value) == shown


def test_a_phone_field_is_masked_as_a_phone_whatever_it_is_prefilled_from():
    assert mask_field_value(Field("contact", type="phone", prefill="name"), "13812345678") == "138****5678"


@pytest.mark.parametrize("note, masked", [
    ("身份证号110101199003071234有误", "身份证号110***********1234有误"),
    ("证号 11010119900307123x 请核对", "证号 110***********123X 请核对"),
    ("旧证 110101900307123 已过期", "旧证 110********7123 已过期"),
    ("请联系13812345678", "请联系138****5678"),
    ("电话 138 1234 5678 或 138-1234-5678", "电话 138****5678 或 138****5678"),
    ("+86 13812345678", "138****5678"), ("008613812345678", "138****5678"),
    ("座机 010-62345678 或 057188889999", "座机 010****5678 或 057*****9999"),
    ("卡号 6222 0212 3456 7890 123", "卡号 ***************0123"),
    ("卡号6222021234567890 共 2 张", "卡号************7890 共 2 张"),
    ("卡号 6222-0212-3456-7890", "卡号 ************7890"),
    # grouped as people write them: an ID in any groups, cards 4-4-4-4-3 and 6-13, phones
    ("证号 110101 19900307 123X 请核对", "证号 110***********123X 请核对"),
    ("证号110101-1990-0307-123x", "证号110***********123X"), ("110 1011 9900 3071 234", "110***********1234"),
    ("卡号 622202 1234567890123", "卡号 ***************0123"), ("622202-1234567890", "************7890"),
    ("卡号 6222-0212-3456-7890-123", "卡号 ***************0123"), ("6222021234567890123", "***************0123"),
    ("138 0013 8000", "138****8000"), ("138-0013-8000", "138****8000"), ("+86 138 0013 8000", "138****8000"),
    ("(010) 12345678", "010****5678"), ("010 12345678", "010****5678"), ("0571-8888-9999", "057*****9999"),
    # full-width digits and letters: the number masked in ASCII, the rest as typed
    ("身份证１１０１０１１９９００３０７１２３Ｘ。", "身份证110***********123X。"),
    ("电话：１３８００１３８０００，谢谢", "电话：138****8000，谢谢"), ("１３８　００１３　８０００", "138****8000"),
    ("（０１０）１２３４５６７８", "010****5678"),
    ("日期 2026-12-07 13800138000", "日期 2026-12-07 138****8000"),
    # what stays: dates, amounts, tracking and ticket numbers, short numbers
    ("请于2026-12-07前补交", "请于2026-12-07前补交"), ("金额 1234.56 元", "金额 1234.56 元"),
    ("受理号 SQ20261123-0007", "受理号 SQ20261123-0007"), ("A001 号，3 号窗口", "A001 号，3 号窗口"),
    ("受理号 SQ20261207-0012", "受理号 SQ20261207-0012"), ("SQ2026120700012", "SQ2026120700012"),
    ("暂存号 T01-20261207-0001", "暂存号 T01-20261207-0001"), ("1001-20261207-0001", "1001-20261207-0001"),
    ("A012 号", "A012 号"), ("金额 ¥1,234.56", "金额 ¥1,234.56"), ("¥12,345,678.90", "¥12,345,678.90"),
    ("２０２６－１２－０７ 前补交", "２０２６－１２－０７ 前补交"),
    ("于 2026-12-07 13:30，共 3 份", "于 2026-12-07 13:30，共 3 份"),
    ("营业执照副本复印件 2 份", "营业执照副本复印件 2 份"), ("", ""),
])
def test_numbers_typed_into_a_note_are_masked(note, masked):
    from kiosq.base.privacy import mask_numbers_in_text

    assert mask_numbers_in_text(note) == masked
