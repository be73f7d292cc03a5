"""What a simulated car keeps for remote control: trusted keys, counters, answers, controls.

Plain state, read by the car's behaviour (`sim/vehicle.py`: an immobilised car does not
start, remote climate runs while parked, the parked reporting interval) and written by the
command agent (`sim/command_agent.py`), which is where its rules live.
"""

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from autocloud.domain.command_keyset import KeyEntry, KeyRole

DEFAULT_PARKED_REPORT_S = 60
REMEMBERED_ANSWERS = 1000  # command ids whose result a resend gets again


@dataclass
class RemoteState:
    keys: dict[str, bytes] = field(default_factory=dict)  # kid -> Ed25519 public key
    roles: dict[str, KeyRole] = field(default_factory=dict)  # kid -> what it may sign
    key_serial: int = 0  # serial of the last key list applied (`sim/key_agent.py`)
    last_counter: dict[str, int] = field(default_factory=dict)  # kid -> highest accepted
    # command id -> (status, reason, data) of the final answer, oldest first
    answers: OrderedDict[str, tuple[str, str | None, dict[str, object]]] = field(
        default_factory=OrderedDict
    )
    executed: int = 0  # commands carried out (a resend must not add one)
    climate_on: bool = False
    immobilised: bool = False
    report_s: int = DEFAULT_PARKED_REPORT_S
    report_now: bool = False  # report at the next tick (a command changed something)

    def trust(self, entries: Iterable[KeyEntry]) -> None:
        """Trust exactly these keys with their roles (provisioning, or a new key list);
        a key not listed is dropped. Counters are kept: a key enrolled again does not
        reopen its old counters to replay."""
        listed = list(entries)
        self.keys = {e.kid: e.raw for e in listed}
        self.roles = {e.kid: e.role for e in listed}

    def remember(self, command_id: str, answer: tuple[str, str | None, dict[str, object]]) -> None:
        self.answers[command_id] = answer
        while len(self.answers) > REMEMBERED_ANSWERS:
            self.answers.popitem(last=False)
