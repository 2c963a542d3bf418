"""The review screen's values (kiosk/filing.masked): choices by label, ticks as ✓, nothing
given as —, and personal data masked by the one rule the server's lists use too."""

import pytest

from kiosq.base.privacy import mask_field_value
from kiosq.content.model import Choice, FormField
from kiosq.kiosk.filing import masked


def field(name: str, type: str = "text", **more) -> FormField:
    return FormField(name=name, type=type, label=name, label_en=name, **more)


REASON = field("reason", "choice", choices=[Choice(value="lost", label="遗失", label_en="Lost"),
                                            Choice(value="expired", label="到期", label_en="Expired")])


def test_choices_ticks_and_nothing_given_are_shown_in_words():
    assert masked(REASON, "lost", "zh") == "遗失" and masked(REASON, "lost", "en") == "Lost"
    assert masked(REASON, "other", "zh") == "other"
    assert masked(field("promise", "checkbox"), True, "zh") == "✓"
    assert masked(field("promise", "checkbox"), False, "zh") == "—"
    assert masked(field("note"), "", "zh") == "—" and masked(field("note"), None, "en") == "—"


@pytest.mark.parametrize("form_field, value, shown", [
    (field("born", "date", prefill="birth"), "1990-03-07", "1990-0****"),  # masked on the kiosk now too
    (field("id_number", "id_number", prefill="id_number"), "110101199003071234", "110***********1234"),
    (field("applicant_name", prefill="name"), "王小明", "王*明"),
    (field("home_address"), "浙江省杭州市上城区解放路1号", "浙江省杭州市******"),
])
def test_personal_data_is_masked_as_the_server_masks_it(form_field, value, shown):
    assert masked(form_field, value, "zh") == shown == mask_field_value(form_field, value)


def test_a_number_is_shown_as_it_is():
    assert masked(field("rent", "number"), 1500, "zh") == "1500"
