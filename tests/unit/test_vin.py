"""Unit tests for autocloud.domain.vin: validation messages, check digit, decoding."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autocloud.domain.errors import InvalidInput, InvalidVin
from autocloud.domain.vin import (
    VIN_ALPHABET,
    DecodedVin,
    check_digit,
    decode_vin,
    normalise_vin,
    validate_vin,
)
from autocloud.domain.wmi import WMI_MANUFACTURERS

# Real VINs whose check digit is correct.
REAL_NA_VINS = [
    "1M8GDM9AXKP042788",  # the 49 CFR 565 textbook example, check digit X
    "1HGCM82633A004352",  # 2003 Honda Accord
    "1G1JC5444R7252367",  # 1994 Chevrolet Cavalier
    "7SAYGAEE3SF215517",  # 2025 Tesla Model Y (US allocation in the '7' range)
]

# The standard's tables, written out independently of the module under test.
TRANSLITERATION = {
    **{d: int(d) for d in "0123456789"},
    **{
        c: int(v) for c, v in zip("ABCDEFGHJKLMNPRSTUVWXYZ", "12345678123457923456789", strict=True)
    },
}
WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def reference_check_digit(vin: str) -> str:
    """Straight transcription of 49 CFR 565.15, to cross-check the module."""
    remainder = sum(TRANSLITERATION[c] * w for c, w in zip(vin, WEIGHTS, strict=True)) % 11
    return "X" if remainder == 10 else str(remainder)


def with_check_digit(vin: str) -> str:
    """Return ``vin`` with position 9 replaced by its computed check digit."""
    return vin[:8] + check_digit(vin) + vin[9:]


# --- normalisation and structure ------------------------------------------------------------


def test_normalise_strips_and_upper_cases() -> None:
    assert normalise_vin("  1m8gdm9axkp042788\n") == "1M8GDM9AXKP042788"


@pytest.mark.parametrize("vin", REAL_NA_VINS)
def test_real_north_american_vins_are_valid(vin: str) -> None:
    assert validate_vin(vin) == vin


def test_lower_case_vin_is_accepted_and_normalised() -> None:
    assert validate_vin(" 1m8gdm9axkp042788 ") == "1M8GDM9AXKP042788"


def test_european_vin_with_non_numeric_position_9_is_valid() -> None:
    assert validate_vin("WVWZZZ1JZXW000001") == "WVWZZZ1JZXW000001"


@pytest.mark.parametrize(
    ("raw", "length"),
    [("1M8GDM9AXKP04278", 16), ("1M8GDM9AXKP0427880", 18), ("", 0), ("   ", 0)],
)
def test_wrong_length_is_rejected_with_the_length(raw: str, length: int) -> None:
    with pytest.raises(InvalidVin, match=f"VIN must be 17 characters, got {length}\\b") as exc:
        validate_vin(raw)
    assert "1M8GDM9AXKP042788" in str(exc.value)  # tells what a valid VIN looks like


@pytest.mark.parametrize(
    ("raw", "char", "position"),
    [
        ("1M8GOM9AXKP042788", "O", 5),
        ("IM8GDM9AXKP042788", "I", 1),
        ("1M8GDM9AXKP04278Q", "Q", 17),
        ("1m8gdm9axkp0427o8", "O", 16),  # lower case is upper-cased before the check
    ],
)
def test_forbidden_letters_are_rejected_with_position(raw: str, char: str, position: int) -> None:
    expected = f"VIN may not contain I, O or Q (found '{char}' at position {position})"
    with pytest.raises(InvalidVin) as exc:
        validate_vin(raw)
    assert str(exc.value).startswith(expected)


@pytest.mark.parametrize(("raw", "char", "position"), [("1M8GD-9AXKP042788", "-", 6)])
def test_other_characters_are_rejected_with_position(raw: str, char: str, position: int) -> None:
    with pytest.raises(InvalidVin, match=f"found '{char}' at position {position}"):
        validate_vin(raw)


def test_invalid_vin_is_an_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        validate_vin("nope")


# --- check digit ----------------------------------------------------------------------------


def test_check_digit_of_the_textbook_example_is_x() -> None:
    assert check_digit("1M8GDM9AXKP042788") == "X"


def test_check_digit_ignores_position_9() -> None:
    assert check_digit("1M8GDM9A0KP042788") == check_digit("1M8GDM9A7KP042788") == "X"


def test_check_digit_of_all_ones_is_one() -> None:
    # sum of weights is 89 and 89 % 11 == 1
    assert check_digit("11111111111111111") == "1"


def test_check_digit_rejects_malformed_input() -> None:
    with pytest.raises(InvalidVin, match="got 3"):
        check_digit("ABC")


def test_bad_check_digit_in_north_american_vin_is_rejected() -> None:
    with pytest.raises(InvalidVin) as exc:
        validate_vin("1M8GDM9A3KP042788")
    assert str(exc.value).startswith(
        "VIN check digit at position 9 is '3' but should be 'X' (required for North American VINs)"
    )


def test_bad_check_digit_in_chinese_vin_is_rejected() -> None:
    good = with_check_digit("LRW3E7EK0NC482345")
    bad = good[:8] + ("1" if good[8] != "1" else "2") + good[9:]
    assert validate_vin(good) == good
    with pytest.raises(InvalidVin, match="required for Chinese VINs"):
        validate_vin(bad)


def test_us_allocation_in_seven_range_requires_check_digit() -> None:
    with pytest.raises(InvalidVin, match="North American"):
        validate_vin("7SAYGAEE4SF215517")


def test_same_bad_check_digit_in_european_vin_is_accepted() -> None:
    good = with_check_digit("WBA3A5C50DF000001")
    bad = good[:8] + ("1" if good[8] != "1" else "2") + good[9:]
    assert validate_vin(bad) == bad
    decoded = decode_vin(bad)
    assert decoded.check_digit_required is False
    assert decoded.check_digit_valid is False
    assert decode_vin(good).check_digit_valid is True


def test_tesla_model_3_with_computed_check_digit() -> None:
    vin = with_check_digit("5YJ3E1EA0KF317000")
    assert vin == "5YJ3E1EA2KF317000"
    with pytest.raises(InvalidVin, match="is '7' but should be '2'"):
        validate_vin("5YJ3E1EA7KF317000")


# --- decoding -------------------------------------------------------------------------------


def test_decode_textbook_example() -> None:
    assert decode_vin("1m8gdm9axkp042788") == DecodedVin(
        vin="1M8GDM9AXKP042788",
        wmi="1M8",
        region="North America",
        country="United States",
        manufacturer="Motor Coach Industries",
        model_year=1989,  # position 7 is numeric -> 1980-2009 cycle
        check_digit_required=True,
        check_digit_valid=True,
    )


def test_decode_north_american_letter_at_position_7_means_2010_or_later() -> None:
    decoded = decode_vin("5YJ3E1EA2KF317000")
    assert decoded.manufacturer == "Tesla"
    assert decoded.country == "United States"
    assert decoded.model_year == 2019  # 'K' with letter 'E' at position 7


@pytest.mark.parametrize(
    ("vin", "year"),
    [
        ("1HGCM82633A004352", 2003),
        ("1G1JC5444R7252367", 1994),
        ("7SAYGAEE3SF215517", 2025),
    ],
)
def test_decode_north_american_model_year(vin: str, year: int) -> None:
    assert decode_vin(vin, reference_year=1990).model_year == year  # reference not used in NA


def test_decode_european_vin() -> None:
    decoded = decode_vin("WVWZZZ1JZXW000001", reference_year=2027)
    assert decoded.wmi == "WVW"
    assert decoded.manufacturer == "Volkswagen"
    assert decoded.region == "Europe"
    assert decoded.country == "Germany"
    assert decoded.model_year == 1999
    assert decoded.check_digit_required is False
    assert decoded.check_digit_valid is False


def test_european_model_year_takes_latest_cycle_not_after_reference_year() -> None:
    assert decode_vin("WVWZZZ1JZXW000001", reference_year=2029).model_year == 2029
    assert decode_vin("WVWZZZ1JZXW000001", reference_year=2028).model_year == 1999
    assert decode_vin("WVWZZZ1JZAW000001", reference_year=2010).model_year == 2010
    assert decode_vin("WVWZZZ1JZAW000001", reference_year=2009).model_year == 1980
    assert decode_vin("WVWZZZ1JZAW000001", reference_year=2040).model_year == 2040
    assert decode_vin("WVWZZZ1JZYW000001", reference_year=1990).model_year is None


def test_default_reference_year_accepts_next_year_model() -> None:
    assert decode_vin("WVWZZZ1JZXW000001").model_year in (1999, 2029)


@pytest.mark.parametrize("code", ["0", "U", "Z"])
def test_undecodable_model_year_is_none(code: str) -> None:
    vin = with_check_digit(f"1HGCM8263{code}A004352")
    assert decode_vin(vin).model_year is None


@pytest.mark.parametrize(
    ("vin", "region", "country", "manufacturer"),
    [
        ("WAUZZZ8V0JA000001", "Europe", "Germany", "Audi"),
        ("WBA3A5C50DF000001", "Europe", "Germany", "BMW"),
        ("WDD2050041F000001", "Europe", "Germany", "Mercedes-Benz"),
        ("WP0ZZZ99ZTS392124", "Europe", "Germany", "Porsche"),
        ("TMBJJ7NE5K0000001", "Europe", "Czech Republic", "Škoda"),
        ("VSSZZZ5FZKR000001", "Europe", "Spain", "SEAT"),
        ("SAJAA4BN0HA000001", "Europe", "United Kingdom", "Jaguar"),
        ("SALGA2BE0MA000001", "Europe", "United Kingdom", "Land Rover"),
        ("VF1RFB00X60000001", "Europe", "France", "Renault"),
        ("VF3LCYHZPJS000001", "Europe", "France", "Peugeot"),
        ("ZFA31200000000001", "Europe", "Italy", "Fiat"),
        ("YV1MS382262000001", "Europe", "Sweden", "Volvo Cars"),
        ("JHMCM56557C000001", "Asia", "Japan", "Honda"),
        ("JT2BG22K0Y0000001", "Asia", "Japan", "Toyota"),
        ("KMHDN45D02U000001", "Asia", "South Korea", "Hyundai"),
        ("LRW3E7EK0NC482345", "Asia", "China", "Tesla"),
        ("2HGFC2F50JH000001", "North America", "Canada", "Honda"),
        ("3VWFE21C04M000001", "North America", "Mexico", "Volkswagen"),
        ("1FAFP40634F000001", "North America", "United States", "Ford"),
        ("1G1JC5444R7252367", "North America", "United States", "Chevrolet"),
        ("6G1EK5EL0FL000001", "Oceania", "Australia", "Holden"),
        ("9BWZZZ377VT000001", "South America", "Brazil", "Volkswagen"),
        ("AAVZZZ6RZGU000001", "Africa", "South Africa", "Volkswagen"),
        ("XTA210990Y0000001", "Europe", "Russia", "Lada"),
    ],
)
def test_decode_region_country_manufacturer(
    vin: str, region: str, country: str, manufacturer: str
) -> None:
    vin = with_check_digit(vin)
    decoded = decode_vin(vin)
    assert (decoded.region, decoded.country, decoded.manufacturer) == (
        region,
        country,
        manufacturer,
    )
    assert decoded.check_digit_valid is True


def test_unknown_wmi_and_unallocated_country_decode_to_none() -> None:
    decoded = decode_vin(with_check_digit("EZZ11111111111111"))
    assert decoded.region == "Africa"
    assert decoded.country is None
    assert decoded.manufacturer is None


def test_every_first_character_has_a_region() -> None:
    for char in VIN_ALPHABET:
        vin = with_check_digit(char + "AA11111111111111")
        assert decode_vin(vin).region in {
            "Africa",
            "Asia",
            "Europe",
            "North America",
            "Oceania",
            "South America",
        }


def test_wmi_table_is_large_and_well_formed() -> None:
    assert len(WMI_MANUFACTURERS) >= 120
    allowed = set(VIN_ALPHABET)
    for wmi, name in WMI_MANUFACTURERS.items():
        assert len(wmi) == 3
        assert set(wmi) <= allowed, wmi
        assert name.strip() == name
        assert name


# --- property test --------------------------------------------------------------------------

_NA_OR_CHINA_FIRST = "12345L"


@given(
    body=st.text(alphabet=VIN_ALPHABET, min_size=16, max_size=16),
    data=st.data(),
)
def test_any_vin_with_computed_check_digit_passes_and_one_change_fails(
    body: str, data: st.DataObject
) -> None:
    vin = with_check_digit("1" + body[:7] + "0" + body[7:15])
    assert vin[8] == reference_check_digit(vin)
    assert validate_vin(vin) == vin

    position = data.draw(st.sampled_from([i for i in range(17) if i != 8]), label="position")
    # Keep the first character in a region that enforces the check digit.
    pool = _NA_OR_CHINA_FIRST if position == 0 else VIN_ALPHABET
    original = TRANSLITERATION[vin[position]]
    candidates = [c for c in pool if TRANSLITERATION[c] != original]
    replacement = data.draw(st.sampled_from(candidates), label="replacement")
    mutated = vin[:position] + replacement + vin[position + 1 :]

    with pytest.raises(InvalidVin, match="check digit at position 9"):
        validate_vin(mutated)
