"""Claim codes catch the typos people make before anything is sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.claim_code import (
    ALPHABET,
    LENGTH,
    ClaimCodeError,
    display,
    new_code,
    normalize,
)

codes = st.builds(lambda _: new_code(), st.integers())


@given(codes)
def test_a_new_code_reads_back_in_every_way_a_person_writes_it(code: str) -> None:
    assert len(code) == LENGTH and set(code) <= set(ALPHABET)
    assert normalize(code) == code
    assert normalize(display(code)) == code
    assert normalize(" " + display(code).lower() + " ") == code


@given(codes, st.integers(0, LENGTH - 1), st.sampled_from(ALPHABET))
def test_every_single_wrong_character_is_caught(code: str, at: int, char: str) -> None:
    typo = code[:at] + char + code[at + 1 :]
    if typo == code:
        return
    with pytest.raises(ClaimCodeError, match="typo"):
        normalize(typo)


@given(codes, st.integers(0, LENGTH - 2))
def test_every_swap_of_neighbours_is_caught(code: str, at: int) -> None:
    swapped = code[:at] + code[at + 1] + code[at] + code[at + 2 :]
    if swapped == code:
        return
    with pytest.raises(ClaimCodeError, match="typo"):
        normalize(swapped)


def test_confusable_letters_read_as_digits() -> None:
    code = new_code()
    spelled = code.replace("0", "o").replace("1", "l")
    assert normalize(spelled) == code


@given(st.text(max_size=40))
def test_anything_else_is_refused_with_a_reason(text: str) -> None:
    try:
        code = normalize(text)
    except ClaimCodeError as err:
        assert str(err)
    else:
        assert len(code) == LENGTH and set(code) <= set(ALPHABET)


def test_wrong_length_and_foreign_characters_say_so() -> None:
    with pytest.raises(ClaimCodeError, match="10 characters"):
        normalize("ABC")
    with pytest.raises(ClaimCodeError, match="no 'U'"):
        normalize("UUUUU-UUUUU")


def test_every_pair_of_characters_swapped_is_caught() -> None:
    from models.claim_code import _check_value

    rest = "7KQ2MXB"
    for a in ALPHABET:
        for b in ALPHABET:
            if a == b:
                continue
            body = a + b + rest
            check = _check_value(body)
            if check >= len(ALPHABET):
                continue
            code = body + ALPHABET[check]
            assert normalize(code) == code
            with pytest.raises(ClaimCodeError, match="typo"):
                normalize(b + a + code[2:])
