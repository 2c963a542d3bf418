"""The GB 11643 resident ID number: its check character, its birth date, and reasons that
never repeat the number."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosq.base.idnumber import id_check_digit, id_number_problem, id_number_valid


@pytest.mark.parametrize("number", ["11010519491231002X", "440308199901011234", "999901199001010010"])
def test_valid_numbers(number):
    assert id_check_digit(number[:17]) == number[17]
    assert id_number_valid(number) and id_number_problem(number) is None


@pytest.mark.parametrize("number, problem", [
    ("110105194912310021", "check digit is wrong"),
    ("11010519491231002x", "17 digits followed by a digit or X"),
    ("11010519491231002X\n", "17 digits followed by a digit or X"),
    ("11010519491231002", "17 digits followed by a digit or X"),
    ("110105199913400028", "valid birth date"),    # born on the 40th of the 13th month
    ("110105000012310028", "valid birth date"),    # year 0
    ("１１０１０５１９４９１２３１００２X", "17 digits"),  # full-width digits
    # the simulator's fictitious cards (area 9999xx), as the reader checks them
    ("999901199001010011", "check digit is wrong"),
    ("999901199001010019", "check digit is wrong"),
    ("999901199001020010", "check digit is wrong"),     # one digit changed
    ("99990319601231019x", "17 digits followed by a digit or X"),
    ("99990119900101001", "17 digits followed by a digit or X"),
    ("9999011990010100100", "17 digits followed by a digit or X"),
    ("99990119901301001" + id_check_digit("99990119901301001"), "valid birth date"),
    ("９９９９０１１９９００１０１００１０", "17 digits"),  # full-width digits
])
def test_invalid_numbers_say_why_without_repeating_the_number(number, problem):
    reason = id_number_problem(number)
    assert reason is not None and problem in reason and number not in reason
    assert not id_number_valid(number)


def test_the_check_digit_needs_exactly_17_ascii_digits():
    for first17 in ("1101051949123100", "110105194912310021", "１１０１０５１９４９１２３１００２"):
        with pytest.raises(ValueError, match="exactly 17 digits"):
            id_check_digit(first17)


@given(st.from_regex(r"[0-9]{6}19[0-9]{2}0[1-9]1[0-9][0-9]{3}", fullmatch=True))
def test_exactly_one_last_character_makes_a_number_valid(first17):
    assert [c for c in "0123456789X" if id_number_valid(first17 + c)] == [id_check_digit(first17)]
