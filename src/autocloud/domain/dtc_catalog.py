"""The catalog of DTC descriptions, read from a JSON file given by path.

What: the file is a JSON array of ``{"Code": "P0301", "Description": "..."}`` objects (the
format of ``../shared/data/dtc/obd_codes.json``, fabiovila/OBDIICodes, MIT). That list was
extracted from a PDF and carries its scars, which :func:`parse_catalog` repairs by rule:

* a word glued to the code (``"P2765/Turbine"`` + ``"Speed Sensor B Circuit"``) goes back to
  the front of the description;
* a range of reserved codes (``"P340A,"`` + ``"P340B, P340C ISO/SAE Reserved"``) becomes one
  entry per listed code;
* a circuit letter glued to its neighbours (``"ValveAControl"``) gets its spaces back.

Entries that still name no valid code are skipped and counted; a code listed twice keeps
its first description. Like the VSS loader in :mod:`autocloud.domain.catalog`, the only I/O
is :func:`load_catalog` reading the one file; everything else is pure.
"""

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from autocloud.domain.dtc import parse_code
from autocloud.domain.errors import ConfigurationError, InvalidInput

__all__ = ["DtcCatalog", "load_catalog", "parse_catalog"]

_LEADING_CODE: Final = re.compile(r"^\s*([PCBU][0-3][0-9A-F]{3})\b(.*)$", re.S)
_LISTED_CODES: Final = re.compile(r"^\s*((?:[PCBU][0-3][0-9A-F]{3}\s*,?\s*)+)(.*)$", re.S)
_GLUED_LETTER: Final = re.compile(r"(?<=[a-z])([A-H])(?=[A-Z][a-z])")
_GLUED_FIRST: Final = re.compile(r"^([A-H])(?=[A-Z][a-z])")
_ANY_CODE: Final = re.compile(r"[PCBU][0-3][0-9A-F]{3}")


@dataclass(frozen=True, slots=True)
class DtcCatalog:
    """Descriptions by canonical code; ``source`` says where they came from."""

    descriptions: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None
    skipped: int = 0  # entries of the file that named no valid code

    def describe(self, code: str) -> str | None:
        return self.descriptions.get(code)

    def __len__(self) -> int:
        return len(self.descriptions)


def _clean(text: str) -> str:
    text = " ".join(text.split())
    text = _GLUED_FIRST.sub(r"\1 ", text)
    return " ".join(_GLUED_LETTER.sub(r" \1 ", text).split())


def _entries(code_field: str, description: str) -> list[tuple[str, str]]:
    """(code, description) pairs of one raw entry; empty when it names no code."""
    match = _LEADING_CODE.match(code_field.upper())
    if match is None:
        return []
    first, glued = match.group(1), code_field.strip()[5:].strip(" ,&\t\n/")
    listed = _LISTED_CODES.match(description)
    if not glued and listed is not None:  # "P340A," + "P340B, P340C ISO/SAE Reserved"
        text = _clean(listed.group(2))
        codes = [first, *_ANY_CODE.findall(listed.group(1))]
        return [(c, text) for c in codes] if text else []
    text = _clean(f"{glued} {description}" if glued else description)
    return [(first, text)] if text else []


def parse_catalog(document: Any, source: str | None = None) -> DtcCatalog:
    """The catalog in a decoded JSON document; ConfigurationError when it is not one."""
    where = source or "the DTC catalog"
    if not isinstance(document, list):
        raise ConfigurationError(
            f'{where} is not a JSON array of {{"Code": ..., "Description": ...}} objects'
        )
    descriptions: dict[str, str] = {}
    skipped = 0
    for entry in document:
        code, text = (
            (entry.get("Code"), entry.get("Description"))
            if isinstance(entry, dict)
            else (
                None,
                None,
            )
        )
        pairs = _entries(code, text) if isinstance(code, str) and isinstance(text, str) else []
        if not pairs:
            skipped += 1
        for found, description in pairs:
            try:
                descriptions.setdefault(parse_code(found), description)
            except InvalidInput:
                skipped += 1
    if document and not descriptions:
        raise ConfigurationError(
            f"{where} has {len(document)} entries but none names a valid code; expected "
            '[{"Code": "P0301", "Description": "Cylinder 1 Misfire Detected"}, ...]'
        )
    return DtcCatalog(descriptions, source, skipped)


def load_catalog(path: str | os.PathLike[str]) -> DtcCatalog:
    """Read the catalog file at `path`; ConfigurationError says what is wrong with it."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(
            f"DTC catalog {file} does not exist; point dtc_catalog_path at a JSON array of "
            '{"Code", "Description"} objects such as ../shared/data/dtc/obd_codes.json'
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read DTC catalog {file}: {exc.strerror or exc}") from exc
    try:
        document = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ConfigurationError(f"DTC catalog {file} is not valid JSON: {exc}") from exc
    return parse_catalog(document, str(file))
