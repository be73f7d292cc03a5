"""Key roles and key lists: what each key may sign, and how a car learns a revocation.

Runs against the code a simulated car runs (`sim/inbound.receive` on its `commands` and
`keys` topics): a command an owner's app key may not sign is refused by the car
(`not_permitted`); a platform-signed key list replaces the car's keys, so a command signed
with a dropped key is refused (`unknown_key`); a forged, replayed, misaddressed or
platform-less key list changes nothing. The car answers every list on `keys/result`
(`applied` with its serial, or `refused` with the reason), decoded here as ingest would.
"""

import random

import msgspec
import pytest

from autocloud.domain import command_signing as signing
from autocloud.domain.command_keyset import (
    PERMITTED,
    KeyEntry,
    KeyList,
    KeyRole,
    encode_key_list,
    permits,
    sign_key_list,
)
from autocloud.domain.command_signing import Signer, new_private_key, same_params
from autocloud.domain.commands import COMMANDS
from autocloud.domain.protocol import KeyListResult, Topic, decode
from autocloud.sim import inbound
from autocloud.sim.energy import PRESET_FOR, Powertrain
from autocloud.sim.faults import FaultPlan
from autocloud.sim.vehicle import SimVehicle

VIN = "WVWZZZ1JZXW000001"
NOW = 1_767_225_600_000
Answer = tuple[str, int | None, str | None]  # a car's answer to a key list


def entry(signer: Signer, role: KeyRole) -> KeyEntry:
    return KeyEntry(signer.kid, signer.public.hex(), role)


class World:
    """A car that trusts the platform key and an owner's app key."""

    def __init__(self) -> None:
        self.platform = Signer(new_private_key())
        self.app = Signer(new_private_key())
        plan = FaultPlan(random.Random(6), offline_rate_per_h=0, clock_skew_s=0)
        self.car = SimVehicle(
            VIN, "vw", PRESET_FOR[Powertrain.BEV], random.Random(5), (49.0, 8.4), plan, "s"
        )
        self.car.remote.trust(
            [entry(self.platform, KeyRole.PLATFORM), entry(self.app, KeyRole.OWNER)]
        )
        self.counter = 0

    def command(self, signer: Signer, name: str) -> bytes:
        self.counter += 1
        return signing.encode(
            signer.sign(
                id=f"c{self.counter}",
                vin=VIN,
                name=name,
                params={},
                issued=NOW,
                expires=NOW + 60_000,
                counter=self.counter,
            )
        )

    def answers(self, payload: bytes) -> list[tuple[str, str | None]]:
        out = inbound.receive(self.car, "commands", payload, NOW + 1000)
        decoded = [msgspec.json.decode(body) for _, body in out]
        return [(a["status"], a.get("reason")) for a in decoded]

    def key_list(self, serial: int, keys: list[KeyEntry], signer: Signer | None = None) -> bytes:
        signed = sign_key_list(
            signer or self.platform, vin=VIN, serial=serial, issued=NOW, keys=keys
        )
        return encode_key_list(signed)

    def receive_keys(self, payload: bytes) -> Answer:
        """The car handles a key list; its one answer on `keys/result`, decoded."""
        [(topic, body)] = inbound.receive(self.car, "keys", payload, NOW + 1000)
        assert topic == "keys/result"
        answer = decode(Topic.KEYS_RESULT, body)  # what the platform's ingest accepts
        assert isinstance(answer, KeyListResult)
        return answer.status.value, answer.serial, answer.reason


@pytest.fixture
def world() -> World:
    return World()


def test_roles_follow_the_command_table() -> None:
    assert PERMITTED[KeyRole.PLATFORM] == {s.name for s in COMMANDS}
    assert PERMITTED[KeyRole.OWNER] == {s.name for s in COMMANDS if s.owner_may}
    assert "immobiliser_enable" not in PERMITTED[KeyRole.OWNER]
    assert "immobiliser_enable" not in PERMITTED[KeyRole.OPERATOR]
    assert "telemetry_rate" in PERMITTED[KeyRole.OPERATOR]
    assert not permits(None, "lock")  # a key with no known role signs nothing


def test_the_car_refuses_what_an_owner_key_may_not_sign(world: World) -> None:
    got = world.answers(world.command(world.app, "immobiliser_enable"))
    assert got == [("rejected", "not_permitted")]
    assert world.car.remote.immobilised is False
    assert world.answers(world.command(world.app, "lock")) == [
        ("accepted", None),
        ("succeeded", None),
    ]
    assert world.answers(world.command(world.platform, "immobiliser_enable"))[-1] == (
        "succeeded",
        None,
    )
    assert world.car.remote.immobilised is True


def test_a_key_without_a_role_signs_nothing(world: World) -> None:
    stranger = Signer(new_private_key())
    world.car.remote.keys[stranger.kid] = stranger.public  # trusted, but with no role
    assert world.answers(world.command(stranger, "lock")) == [("rejected", "not_permitted")]


def test_a_key_list_drops_a_revoked_key_on_the_car(world: World) -> None:
    assert world.answers(world.command(world.app, "unlock"))[-1] == ("succeeded", None)
    only = world.key_list(1, [entry(world.platform, KeyRole.PLATFORM)])
    assert world.receive_keys(only) == ("applied", 1, None)
    assert world.car.remote.keys == {world.platform.kid: world.platform.public}
    assert world.car.remote.key_serial == 1
    # The retained list again (a reconnect): confirmed again, nothing changes.
    assert world.receive_keys(only) == ("applied", 1, None)
    assert world.car.remote.key_serial == 1
    assert world.answers(world.command(world.app, "lock")) == [("rejected", "unknown_key")]
    # Enrolled again (a new list): it works again, its counter kept (no replay of old ones).
    both = [entry(world.platform, KeyRole.PLATFORM), entry(world.app, KeyRole.OWNER)]
    assert world.receive_keys(world.key_list(2, both)) == ("applied", 2, None)
    assert world.answers(world.command(world.app, "lock"))[-1] == ("succeeded", None)


def test_bad_key_lists_change_nothing(world: World) -> None:
    platform_only = [entry(world.platform, KeyRole.PLATFORM)]
    before = (dict(world.car.remote.keys), dict(world.car.remote.roles))
    assert world.receive_keys(world.key_list(5, platform_only)) == ("applied", 5, None)
    applied = (dict(world.car.remote.keys), dict(world.car.remote.roles))
    assert applied != before
    owner_made = [*platform_only, entry(world.app, KeyRole.PLATFORM)]
    forged = msgspec.structs.replace(
        msgspec.json.decode(world.key_list(9, platform_only), type=KeyList), keys=owner_made
    )
    # Each is refused, with the reason and the list's serial (none when unreadable).
    bad: dict[str, tuple[bytes, Answer]] = {
        "same serial, other keys": (
            world.key_list(5, [*platform_only, entry(world.app, KeyRole.OWNER)]),
            ("refused", 5, "replayed_counter"),
        ),
        "older": (
            world.key_list(4, [*platform_only, entry(world.app, KeyRole.OWNER)]),
            ("refused", 4, "replayed_counter"),
        ),
        "altered": (encode_key_list(forged), ("refused", 9, "bad_signature")),
        "no platform key": (
            world.key_list(9, [entry(world.app, KeyRole.OWNER)]),
            ("refused", 9, "malformed"),
        ),
        "not json": (b"{", ("refused", None, "malformed")),
        "another vin": (
            encode_key_list(
                sign_key_list(
                    world.platform,
                    vin="WVWZZZ1JZXW000002",
                    serial=9,
                    issued=NOW,
                    keys=platform_only,
                )
            ),
            ("refused", 9, "wrong_vin"),
        ),
        "wrong kid in an entry": (
            world.key_list(
                9,
                [
                    *platform_only,
                    KeyEntry(world.platform.kid, world.app.public.hex(), KeyRole.OWNER),
                ],
            ),
            ("refused", 9, "malformed"),
        ),
    }
    for label, (payload, expected) in bad.items():
        assert world.receive_keys(payload) == expected, label
        got = (dict(world.car.remote.keys), dict(world.car.remote.roles))
        assert got == applied, label
        assert world.car.remote.key_serial == 5, label


def test_only_a_platform_key_may_sign_a_key_list(world: World) -> None:
    grab = [entry(world.app, KeyRole.PLATFORM)]  # the owner's app makes itself the platform
    assert world.receive_keys(world.key_list(1, grab, signer=world.app)) == (
        "refused",
        1,
        "not_permitted",
    )
    assert world.car.remote.roles[world.app.kid] is KeyRole.OWNER
    assert world.car.remote.key_serial == 0
    assert world.answers(world.command(world.app, "immobiliser_enable")) == [
        ("rejected", "not_permitted")
    ]


def test_parameters_compare_by_their_signed_bytes() -> None:
    assert {"x": 1} == {"x": True} and {"x": 1} == {"x": 1.0}  # why `==` is not enough
    assert not same_params({"x": 1}, {"x": True})
    assert not same_params({"x": 1}, {"x": 1.0})
    assert same_params({"a": 1, "b": 2.5}, {"b": 2.5, "a": 1})
