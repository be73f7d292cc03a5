"""Vehicle Identification Numbers: normalise, validate and decode.

A VIN (ISO 3779, 49 CFR 565 in the United States) is the identity of every vehicle the platform
knows about, so it is checked once, at the edge, with a message that tells the caller exactly
what is wrong. Decoding turns the standardised parts of the VIN into facts that are useful
without any network look-up: region, country, manufacturer and model year.

Layout of the 17 positions (1-based, as printed in every standard)::

    1-3  World Manufacturer Identifier (WMI): 1 = region, 1-2 = country, 1-3 = manufacturer
    4-8  Vehicle Descriptor Section (manufacturer specific)
    9    check digit (mandatory in North America and China, optional elsewhere)
    10   model year (30-year cycle)
    11   assembly plant
    12-17 serial number

The module is pure: no I/O, no global state beyond constant tables. The only thing that reads
the clock is the default ``reference_year`` of :func:`decode_vin`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from autocloud.domain.errors import InvalidVin
from autocloud.domain.wmi import WMI_MANUFACTURERS

VIN_LENGTH: Final = 17
CHECK_DIGIT_POSITION: Final = 9  # 1-based, as in the standards

#: Every character a VIN may contain: digits and A-Z without I, O and Q (they look like 1, 0, 9).
VIN_ALPHABET: Final = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_ALLOWED: Final = frozenset(VIN_ALPHABET)
_FORBIDDEN_LETTERS: Final = frozenset("IOQ")

_EXAMPLE: Final = (
    "A valid VIN has 17 characters: digits and the letters A-Z except I, O and Q, "
    "e.g. 1M8GDM9AXKP042788."
)

# --- Check digit (49 CFR 565.15, identical to ISO 3779 Annex) --------------------------------

#: Numeric value of each character for the check-digit sum. Letters follow the
#: 1-9 / 1-9 / 2-9 pattern of the standard; digits stand for themselves.
_TRANSLITERATION: Final[dict[str, int]] = {
    **{d: int(d) for d in "0123456789"},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}

#: Weight of each position (position 9, the check digit itself, weighs 0).
_WEIGHTS: Final[tuple[int, ...]] = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)

# --- Regions (ISO 3780, first character) -----------------------------------------------------

_REGION_BY_FIRST_CHAR: Final[dict[str, str]] = {
    char: region
    for chars, region in (
        ("ABCDEFGH", "Africa"),
        ("JKLMNPR", "Asia"),
        ("STUVWXYZ", "Europe"),
        ("12345", "North America"),
        ("67", "Oceania"),
        ("890", "South America"),
    )
    for char in chars
}

# --- Countries (ISO 3780 / SAE J1044 allocations, first two characters) ----------------------

#: Order of the second character inside an allocation range: A-Z (without I, O, Q), then 1-9,
#: then 0. "SA"-"SM" therefore means SA, SB, ..., SH, SJ, ..., SM.
_SECOND_CHAR_ORDER: Final = "ABCDEFGHJKLMNPRSTUVWXYZ1234567890"

#: Inclusive ranges of the first two VIN characters and the country they were allocated to.
#: Only the main vehicle-producing countries are listed; other codes decode to ``None``.
_COUNTRY_RANGES: Final[tuple[tuple[str, str, str], ...]] = (
    # Africa
    ("AA", "AH", "South Africa"),
    ("AJ", "AN", "Ivory Coast"),
    ("BA", "BE", "Angola"),
    ("BF", "BK", "Kenya"),
    ("BL", "BR", "Tanzania"),
    ("CA", "CE", "Benin"),
    ("CF", "CK", "Madagascar"),
    ("CL", "CR", "Tunisia"),
    ("DA", "DE", "Egypt"),
    ("DF", "DK", "Morocco"),
    ("DL", "DR", "Zambia"),
    ("EA", "EE", "Ethiopia"),
    ("EF", "EK", "Mozambique"),
    ("FA", "FE", "Ghana"),
    ("FF", "FK", "Nigeria"),
    # Asia
    ("JA", "J0", "Japan"),
    ("KA", "KE", "Sri Lanka"),
    ("KF", "KK", "Israel"),
    ("KL", "KR", "South Korea"),
    ("LA", "L0", "China"),
    ("MA", "ME", "India"),
    ("MF", "MK", "Indonesia"),
    ("ML", "MR", "Thailand"),
    ("NA", "NE", "Iran"),
    ("NF", "NK", "Pakistan"),
    ("NL", "NR", "Turkey"),
    ("PA", "PE", "Philippines"),
    ("PF", "PK", "Singapore"),
    ("PL", "PR", "Malaysia"),
    ("RA", "RE", "United Arab Emirates"),
    ("RF", "RK", "Taiwan"),
    ("RL", "RR", "Vietnam"),
    ("RS", "R0", "Saudi Arabia"),
    # Europe
    ("SA", "SM", "United Kingdom"),
    ("SN", "ST", "Germany"),
    ("SU", "SZ", "Poland"),
    ("S1", "S4", "Latvia"),
    ("TA", "TH", "Switzerland"),
    ("TJ", "TP", "Czech Republic"),
    ("TR", "TV", "Hungary"),
    ("TW", "T1", "Portugal"),
    ("UH", "UM", "Denmark"),
    ("UN", "UT", "Ireland"),
    ("UU", "UZ", "Romania"),
    ("U5", "U7", "Slovakia"),
    ("VA", "VE", "Austria"),
    ("VF", "VR", "France"),
    ("VS", "VW", "Spain"),
    ("VX", "V2", "Serbia"),
    ("V3", "V5", "Croatia"),
    ("V6", "V0", "Estonia"),
    ("WA", "W0", "Germany"),
    ("XA", "XE", "Bulgaria"),
    ("XF", "XK", "Greece"),
    ("XL", "XR", "Netherlands"),
    ("XS", "XW", "Russia"),
    ("XX", "X2", "Luxembourg"),
    ("X3", "X0", "Russia"),
    ("YA", "YE", "Belgium"),
    ("YF", "YK", "Finland"),
    ("YL", "YR", "Malta"),
    ("YS", "YW", "Sweden"),
    ("YX", "Y2", "Norway"),
    ("Y3", "Y5", "Belarus"),
    ("Y6", "Y0", "Ukraine"),
    ("ZA", "ZR", "Italy"),
    ("ZX", "Z2", "Slovenia"),
    ("Z3", "Z5", "Lithuania"),
    # North America
    ("1A", "10", "United States"),
    ("2A", "20", "Canada"),
    ("3A", "3W", "Mexico"),
    ("3X", "37", "Costa Rica"),
    ("38", "30", "Cayman Islands"),
    ("4A", "40", "United States"),
    ("5A", "50", "United States"),
    # Oceania (and the later US allocations in 7)
    ("6A", "6W", "Australia"),
    ("7A", "7E", "New Zealand"),
    ("7F", "70", "United States"),
    # South America
    ("8A", "8E", "Argentina"),
    ("8F", "8K", "Chile"),
    ("8L", "8R", "Ecuador"),
    ("8S", "8W", "Peru"),
    ("8X", "82", "Venezuela"),
    ("9A", "9E", "Brazil"),
    ("9F", "9K", "Colombia"),
    ("9L", "9R", "Paraguay"),
    ("9S", "9W", "Uruguay"),
    ("9X", "92", "Trinidad and Tobago"),
    ("93", "99", "Brazil"),
)

#: Ranges whose region differs from what the first character says. SAE allocated the unused
#: tail of the Oceania code "7" to United States manufacturers (Tesla 7SA, 7G2, ...); those
#: vehicles are North American and carry the mandatory check digit.
_REGION_RANGES: Final[tuple[tuple[str, str, str], ...]] = (("7F", "70", "North America"),)

#: Regions and first characters whose rules make the check digit mandatory, with the wording
#: used in the error message.
_CHECK_DIGIT_REGION: Final = "North America"
_CHECK_DIGIT_FIRST_CHARS: Final[dict[str, str]] = {"L": "Chinese"}

# --- Model year (position 10) ----------------------------------------------------------------

#: Year codes in order; index 0 is 1980 (and 2010, 2040, ...). U, Z and 0 are never used.
_YEAR_CODES: Final = "ABCDEFGHJKLMNPRSTVWXY123456789"
_YEAR_CYCLE: Final = len(_YEAR_CODES)  # 30
_FIRST_MODEL_YEAR: Final = 1980


def _expand_ranges(ranges: tuple[tuple[str, str, str], ...]) -> dict[str, str]:
    """Turn inclusive two-character ranges into a prefix -> value map for O(1) look-up.

    Fails loudly at import time if a range is malformed or two ranges overlap, so a typo in a
    table cannot silently mis-classify VINs.
    """
    table: dict[str, str] = {}
    for start, end, value in ranges:
        if start[0] != end[0]:
            raise ValueError(f"range {start}-{end} spans two first characters")
        first = _SECOND_CHAR_ORDER.index(start[1])
        last = _SECOND_CHAR_ORDER.index(end[1])
        if first > last:
            raise ValueError(f"range {start}-{end} is empty")
        for second in _SECOND_CHAR_ORDER[first : last + 1]:
            prefix = start[0] + second
            if prefix in table:
                raise ValueError(f"prefix {prefix} is in two ranges")
            table[prefix] = value
    return table


_COUNTRY_BY_PREFIX: Final = _expand_ranges(_COUNTRY_RANGES)
_REGION_BY_PREFIX: Final = _expand_ranges(_REGION_RANGES)


@dataclass(frozen=True, slots=True)
class DecodedVin:
    """What a VIN says about a vehicle, as far as it can be read without a look-up service.

    ``country`` is the country the WMI was allocated to, which is usually, but not always,
    the country of assembly. ``model_year`` is exact for North American VINs and a best guess
    elsewhere (see :func:`decode_vin`).
    """

    vin: str
    wmi: str
    region: str
    country: str | None
    manufacturer: str | None
    model_year: int | None
    check_digit_required: bool
    check_digit_valid: bool


def normalise_vin(raw: str) -> str:
    """Return ``raw`` without surrounding whitespace and in upper case.

    VINs are typed by people and read by OCR, so case and stray spaces are not errors.
    """
    return raw.strip().upper()


def _check_structure(vin: str) -> None:
    """Raise :class:`InvalidVin` unless ``vin`` has 17 characters from the VIN alphabet."""
    if len(vin) != VIN_LENGTH:
        raise InvalidVin(f"VIN must be {VIN_LENGTH} characters, got {len(vin)}. {_EXAMPLE}")
    for position, char in enumerate(vin, start=1):
        if char in _ALLOWED:
            continue
        if char in _FORBIDDEN_LETTERS:
            raise InvalidVin(
                f"VIN may not contain I, O or Q (found {char!r} at position {position}). {_EXAMPLE}"
            )
        raise InvalidVin(
            f"VIN may only contain digits and the letters A-Z except I, O and Q "
            f"(found {char!r} at position {position}). {_EXAMPLE}"
        )


def check_digit(vin: str) -> str:
    """Return the check digit ('0'-'9' or 'X') that position 9 of ``vin`` should hold.

    Implements 49 CFR 565.15 (the same algorithm as ISO 3779): transliterate every character
    to a number, multiply by the position weight, sum, and take the remainder modulo 11, with
    10 written as 'X'. The character currently at position 9 does not matter (its weight is 0).
    ``vin`` is normalised first; raises :class:`InvalidVin` if it is not 17 VIN characters.
    """
    vin = normalise_vin(vin)
    _check_structure(vin)
    total = sum(_TRANSLITERATION[char] * weight for char, weight in zip(vin, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def _region(vin: str) -> str:
    """Return the ISO 3780 region of a structurally valid VIN."""
    return _REGION_BY_PREFIX.get(vin[:2]) or _REGION_BY_FIRST_CHAR[vin[0]]


def _check_digit_requirement(vin: str, region: str) -> str | None:
    """Say why the check digit is mandatory for ``vin`` ("North American", ...), or None.

    The US (49 CFR 565), Canada and Mexico require it, and so does China (GB 16735). Europe and
    most other regions treat position 9 as an ordinary character, so a European VIN whose
    position 9 does not match the computed digit is still valid.
    """
    if region == _CHECK_DIGIT_REGION:
        return "North American"
    return _CHECK_DIGIT_FIRST_CHARS.get(vin[0])


def validate_vin(raw: str) -> str:
    """Return the normalised VIN, or raise :class:`InvalidVin` saying exactly what is wrong.

    Checks, in order: length (17), alphabet (digits and A-Z except I, O, Q), and the check digit
    at position 9 where the VIN's region makes it mandatory (North America and China).
    """
    vin = normalise_vin(raw)
    _check_structure(vin)
    required_for = _check_digit_requirement(vin, _region(vin))
    if required_for is not None:
        expected = check_digit(vin)
        actual = vin[CHECK_DIGIT_POSITION - 1]
        if actual != expected:
            raise InvalidVin(
                f"VIN check digit at position {CHECK_DIGIT_POSITION} is {actual!r} but should "
                f"be {expected!r} (required for {required_for} VINs). Check the VIN for a "
                f"mistyped character."
            )
    return vin


def _model_year(vin: str, region: str, reference_year: int) -> int | None:
    """Decode position 10 into a model year, or None when it cannot be decoded.

    The code repeats every 30 years. In North America position 7 disambiguates (49 CFR 565.15:
    a letter there means 2010-2039, a digit 1980-2009). Elsewhere nothing does, so the most
    recent year not after ``reference_year`` is returned; that is a guess, correct for vehicles
    younger than 30 years.
    """
    index = _YEAR_CODES.find(vin[9])
    if index < 0:
        return None
    year = _FIRST_MODEL_YEAR + index
    if region == "North America":
        return year + _YEAR_CYCLE if vin[6].isalpha() else year
    if year > reference_year:
        return None
    return year + (reference_year - year) // _YEAR_CYCLE * _YEAR_CYCLE


def decode_vin(raw: str, *, reference_year: int | None = None) -> DecodedVin:
    """Validate ``raw`` (raising :class:`InvalidVin`) and decode what the VIN itself says.

    ``reference_year`` bounds the model-year guess outside North America, where the 30-year
    code is ambiguous: the latest candidate year not after it is chosen. It defaults to next
    year (UTC), because vehicles are sold as next year's model from mid-year on.
    """
    vin = validate_vin(raw)
    if reference_year is None:
        reference_year = datetime.now(UTC).year + 1
    region = _region(vin)
    wmi = vin[:3]
    return DecodedVin(
        vin=vin,
        wmi=wmi,
        region=region,
        country=_COUNTRY_BY_PREFIX.get(vin[:2]),
        manufacturer=WMI_MANUFACTURERS.get(wmi),
        model_year=_model_year(vin, region, reference_year),
        check_digit_required=_check_digit_requirement(vin, region) is not None,
        check_digit_valid=check_digit(vin) == vin[CHECK_DIGIT_POSITION - 1],
    )
