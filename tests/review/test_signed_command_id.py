"""An app-signed command's id is 8 to 64 of [A-Za-z0-9_-], nothing else.

`COMMAND_ID` is anchored with `$`, which also matches before a trailing newline: with
`re.match`, "abcdefgh\\n" passed, and an id with a line break was stored, audited, logged
and put in URLs (`/v1/commands/{id}`).
"""

import pytest

from autocloud.domain.command_signing import SignedCommand
from autocloud.domain.errors import InvalidInput
from autocloud.domain.records import Vehicle
from autocloud.services.command_gate import check_signed

VIN = "WVWZZZ1JZXW000003"
NOW = 1_700_000_000_000


def _signed(command_id: str) -> SignedCommand:
    return SignedCommand(1, command_id, VIN, "lock", {}, NOW, NOW + 60_000, 1, "k" * 16, "sig")


@pytest.mark.parametrize("command_id", ["abcdefgh\n", "abcdefgh\r\n", "abc\ndefgh", "short"])
def test_an_id_with_a_line_break_is_refused(command_id: str) -> None:
    vehicle = Vehicle(1, VIN, "beta", "Calf", None, None, 0)
    with pytest.raises(InvalidInput, match="command id"):
        check_signed(_signed(command_id), vehicle, {}, NOW)


def test_a_plain_id_passes() -> None:
    vehicle = Vehicle(1, VIN, "beta", "Calf", None, None, 0)
    assert check_signed(_signed("app-cmd_0001"), vehicle, {}, NOW) == {}
