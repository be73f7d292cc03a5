"""Vehicle credentials and topic ACLs in Mosquitto's dynamic-security plugin (single-node tier).

`MosquittoDynsec` implements the `VehicleAccess` port by sending dynamic-security commands over
MQTT (`$CONTROL/dynamic-security/v1`) as the plugin's admin user, so vehicles are granted and
revoked at run time without restarting the broker. `write_mosquitto_config` writes a broker
configuration that loads the plugin, for the CLI and the tests.

Model in the plugin (Mosquitto 2.0.11):

- one *client* per vehicle: username = VIN, password = the vehicle's secret;
- one *role* per vehicle, `vehicle-{VIN}`, allowing `vehicles/{VIN}/#` for publishClientSend,
  subscribePattern and publishClientReceive;
- default ACL access: deny publish, receive and subscribe (set by `ensure_platform_client`), so a
  vehicle can use nothing but its own topics; unsubscribe stays allowed (it leaks nothing).
- one *client* per fleet gateway (`set_gateway`): username = client id = `gw.{brand}.{name}`,
  roles holding one `publishClientSend` ACL per granted `vehicles/{VIN}/{telemetry,state,events}`
  topic and nothing else, so a gateway can neither subscribe nor forge cloud-to-vehicle topics.

Why one role per vehicle and not one shared role `vehicle` with `vehicles/%u/#`: checked against
Mosquitto 2.0.11 (see `tests/integration/test_mosquitto_access.py`), dynsec does *not* substitute
`%u` (nor `%c`) in ACL topics, for any ACL type: a client holding only `vehicles/%u/#` can
neither subscribe to nor publish on its own topics. Pattern substitution in dynsec ACLs arrived in
later Mosquitto releases; on such a broker the shared role would cut the object count in half.

Replies from the plugin go to one fixed topic that every admin connection sees, so each command
carries a `correlationData` with a per-instance prefix and replies of other instances are ignored.
Changing or deleting a client kicks its connected sessions (checked: "Administrative action"),
even when nothing changes. So `ensure_platform_client`, which every consumer process runs at
start, sends `modifyClient` only when the platform client's roles or password differ: starting
a consumer must not disconnect the others (`tests/integration/test_platform_client.py`).

Scale limit (measured here, Mosquitto 2.0.11): dynsec rewrites its whole JSON file after every
changing command, so each command costs time proportional to the fleet already stored: ~8 ms
per command at 1,000 vehicles (0.7 MB file), ~57 ms at 7,000 (5 MB). Bulk provisioning ran at
~100 vehicles/s for the first thousand and ~9/s between 3,000 and 7,000; a single grant stays
well under a second there. Batching (`grant_many`) saves round trips, not those rewrites. For
fleets far beyond that, provision offline (write the JSON before the broker starts) or use
Mosquitto's password/ACL files, whose `pattern` rules do substitute `%u`.
"""

from __future__ import annotations

import glob
import itertools
import json
import logging
import os
import pwd
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from autocloud.domain.errors import (
    ConfigurationError,
    InvalidInput,
    InvalidVin,
    StoreUnavailable,
)
from autocloud.domain.gateway import GATEWAY_SUBTOPICS

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC: Final = "$CONTROL/dynamic-security/v1/response"
PLATFORM_ROLE: Final = "autocloud-platform"
DYNSEC_PLUGIN_NAME: Final = "mosquitto_dynamic_security.so"
DYNSEC_FILE_NAME: Final = "dynamic-security.json"
INSTALL_HINT: Final = "install Mosquitto (apt-get install mosquitto mosquitto-clients)"

# ISO 3779: 17 characters, digits and capitals except I, O, Q. Anything else could smuggle MQTT
# wildcards or separators into the ACL topics.
_VIN_PATTERN: Final = re.compile(r"[A-HJ-NPR-Z0-9]{17}")

# Errors that mean "already in the wanted state" for the command that reports them.
_HARMLESS_ERRORS: Final = {
    "createRole": {"Role already exists"},
    "deleteClient": {"Client not found"},
    "deleteRole": {"Role not found"},
    "addRoleACL": {"ACL with this topic already exists"},
}
_CLIENT_EXISTS: Final = "Client already exists"
# ACLs per gateway role: one createRole per control message stays far below the broker's
# 1 MiB packet limit (~110 bytes of JSON per ACL).
GATEWAY_ACLS_PER_ROLE: Final = 4000
_GATEWAY_LOGIN: Final = re.compile(r"gw\.[a-z0-9][a-z0-9-]{0,63}\.[a-z0-9][a-z0-9-]{0,63}")
_ACL_TYPES: Final = ("publishClientSend", "subscribePattern", "publishClientReceive")

type JsonObject = dict[str, Any]

log = logging.getLogger(__name__)


def vehicle_role(vin: str) -> str:
    """Name of the dynsec role that holds the ACLs of one vehicle."""
    return f"vehicle-{vin}"


def vehicle_acls(vin: str) -> list[JsonObject]:
    """ACLs that let a vehicle publish, subscribe and receive under `vehicles/{vin}/#` only."""
    topic = f"vehicles/{vin}/#"
    return [_allow(acltype, topic) for acltype in _ACL_TYPES]


def platform_acls() -> list[JsonObject]:
    """ACLs of the platform's own client: every vehicle topic, directly or shared (MQTT 5)."""
    return [
        _allow("subscribePattern", "vehicles/#"),
        _allow("subscribePattern", "$share/+/vehicles/#"),
        _allow("publishClientSend", "vehicles/#"),
        _allow("publishClientReceive", "vehicles/#"),
    ]


def _allow(acltype: str, topic: str) -> JsonObject:
    return {"acltype": acltype, "topic": topic, "allow": True, "priority": 0}


def _check_vin(vin: str) -> None:
    if not _VIN_PATTERN.fullmatch(vin):
        raise InvalidVin(
            f"{vin!r} is not a VIN: 17 characters from 0-9 and A-Z without I, O and Q expected"
        )


def _is_gateway_login(username: str) -> bool:
    return _GATEWAY_LOGIN.fullmatch(username) is not None


def _check_secret(vin: str, secret: str) -> None:
    if not secret:
        raise InvalidInput(f"empty secret for vehicle {vin}: a broker credential needs a password")


@dataclass(slots=True)
class _Batch:
    """Commands sent in one control message, waiting for their replies."""

    remaining: set[str]
    replies: dict[str, JsonObject] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


class MosquittoDynsec:
    """`VehicleAccess` on Mosquitto's dynamic-security plugin, over one admin MQTT connection.

    The connection lives on paho's network thread (`loop_start`), reconnects on its own, and is
    shared by all callers; methods are thread-safe and block until the plugin answered or
    `timeout` seconds passed (then `StoreUnavailable`). The timeout bounds one control message of
    at most `2 * batch_size` commands; with large fleets raise it or lower `batch_size` (see the
    scale limit above).
    """

    def __init__(
        self,
        host: str,
        port: int,
        admin_user: str,
        admin_password: str,
        *,
        timeout: float = 10.0,
        batch_size: int = 25,
    ) -> None:
        if batch_size < 1 or timeout <= 0:
            raise ConfigurationError("dynsec batch_size must be >= 1 and timeout > 0")
        self._host, self._port = host, port
        self._where = f"{host}:{port}"
        self._admin_user = admin_user
        self._timeout = timeout
        self._batch_size = batch_size
        self._prefix = uuid.uuid4().hex[:12]
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._pending: dict[str, _Batch] = {}
        self._ready = threading.Event()
        self._refused: str | None = None
        self._starting = True
        self._client = self._make_client(admin_user, admin_password)
        self._connect(host, port)

    # -- VehicleAccess -------------------------------------------------------------------------

    def grant(self, vin: str, secret: str) -> None:
        """Create or replace the vehicle's credential and ACL; sessions using the old one end."""
        self.grant_many([(vin, secret)])

    def grant_many(self, items: Iterable[tuple[str, str]]) -> None:
        """Grant many vehicles, `batch_size` per control message, for bulk provisioning.

        Round one creates role and client of each vehicle; round two replaces password and
        roles of the vehicles whose client existed already. Items are checked chunk by chunk,
        so an error part-way leaves the earlier chunks granted (granting again is harmless).
        """
        for chunk in _chunks(items, self._batch_size):
            for vin, secret in chunk:
                _check_vin(vin)
                _check_secret(vin, secret)
            self._grant_chunk(dict(chunk))

    def revoke(self, vin: str) -> None:
        """Delete the vehicle's client and role; its sessions are kicked. Unknown VINs are fine."""
        _check_vin(vin)
        self._run(
            [
                {"command": "deleteClient", "username": vin},
                {"command": "deleteRole", "rolename": vehicle_role(vin)},
            ]
        )

    # -- GatewayAccess (fleet gateways) -------------------------------------------------------

    def set_gateway(self, username: str, secret: str | None, vins: frozenset[str]) -> None:
        """Create or update a gateway's client; its publish ACLs become exactly `vins`' topics.

        The ACLs go into fresh roles (at most `GATEWAY_ACLS_PER_ROLE` each, one control
        message and one dynsec file rewrite per role, so 10,000 VINs cost a handful of
        rewrites, not 30,000), then the client is switched to them in one command and the old
        roles are deleted. Telemetry roles get the highest priority: dynsec scans a client's
        ACLs one by one for each PUBLISH, so the hot topic is found first. Changing a client
        kicks its session in Mosquitto 2.0; the gateway reconnects.
        """
        if not _is_gateway_login(username):
            raise InvalidInput(f"{username!r} is not a gateway login (gw.<brand>.<name>)")
        for vin in vins:
            _check_vin(vin)
        old = self._client_roles(username)
        if old is None and secret is None:
            raise StoreUnavailable(
                f"gateway {username} has no client in Mosquitto at {self._where}: delete and "
                "create the gateway again"
            )
        generation = uuid.uuid4().hex[:8]
        roles: list[JsonObject] = []
        for kind, sub in enumerate(GATEWAY_SUBTOPICS):
            topics = [f"vehicles/{vin}/{sub}" for vin in sorted(vins)]
            for i in range(0, len(topics), GATEWAY_ACLS_PER_ROLE):
                name = f"{username}-{generation}-{sub}-{i // GATEWAY_ACLS_PER_ROLE}"
                acls = [
                    _allow("publishClientSend", t) for t in topics[i : i + GATEWAY_ACLS_PER_ROLE]
                ]
                self._run([_create_role(name, acls)])
                roles.append({"rolename": name, "priority": len(GATEWAY_SUBTOPICS) - kind})
        client: JsonObject = {"username": username, "roles": roles}
        if secret is not None:
            client["password"] = secret
        if old is None:
            self._run([{"command": "createClient", "clientid": username, **client}])
        else:
            self._run([{"command": "modifyClient", **client}])
            stale = [r for r in old if r not in {role["rolename"] for role in roles}]
            if stale:
                self._run([{"command": "deleteRole", "rolename": r} for r in stale])

    def remove_gateway(self, username: str) -> None:
        """Delete a gateway's client and roles; its session is kicked. Unknown ones are fine."""
        if not _is_gateway_login(username):
            raise InvalidInput(f"{username!r} is not a gateway login (gw.<brand>.<name>)")
        roles = self._client_roles(username) or []
        self._run(
            [
                {"command": "deleteClient", "username": username},
                *({"command": "deleteRole", "rolename": r} for r in roles),
            ]
        )

    def _client_roles(self, username: str) -> list[str] | None:
        """Role names of a dynsec client, or None when there is no such client."""
        (reply,) = self._run(
            [{"command": "getClient", "username": username}], tolerate={"Client not found"}
        )
        if reply.get("error"):
            return None
        client = reply.get("data", {}).get("client", {})
        return [r["rolename"] for r in client.get("roles", []) if "rolename" in r]

    # -- platform set-up -----------------------------------------------------------------------

    def ensure_platform_client(self, username: str, password: str) -> None:
        """Create or update the platform's own client and make the broker deny by default.

        The platform may subscribe (also through `$share/{group}/` shared subscriptions) to,
        publish to and receive from every `vehicles/...` topic; everybody without an explicit
        ACL is denied publish, receive and subscribe.
        """
        if not username or not password:
            raise ConfigurationError("the platform's broker user and password must not be empty")
        # createRole is a no-op on an existing role; addRoleACL then completes its ACLs. Neither
        # kicks anybody (checked on 2.0.11): only modifyClient does.
        add_acls = [
            {"command": "addRoleACL", "rolename": PLATFORM_ROLE, **acl} for acl in platform_acls()
        ]
        self._run([self._default_deny(), _create_role(PLATFORM_ROLE, platform_acls()), *add_acls])
        (created,) = self._run(
            [_create_client(username, password, PLATFORM_ROLE)], tolerate={_CLIENT_EXISTS}
        )
        if not created.get("error"):
            return
        # The client exists. modifyClient would disconnect every session of the user, that is
        # every running consumer, so it is sent only when something differs.
        stale = self._platform_client_stale(username, password)
        if stale is not None:
            log.info("updating the platform's broker client %s (%s)", username, stale)
            wanted = _create_client(username, password, PLATFORM_ROLE)
            self._run([{**wanted, "command": "modifyClient"}])

    def _platform_client_stale(self, username: str, password: str) -> str | None:
        """Why the existing platform client needs a modifyClient, or None when it is as wanted.

        Roles are read back (getClient). The password cannot be: dynsec keeps only a salted
        hash and never returns it. So the broker itself is asked, with one throw-away login
        (a fresh client id, clean start, session expiry 0, no subscription: no session stays
        and no other connection is touched). Asking the broker beats remembering a digest of the
        last password set: it stays true when the dynsec file is restored or edited with
        `mosquitto_ctrl`, and when consumers on several hosts each keep their own data directory.
        """
        roles = self._client_roles(username)
        if roles != [PLATFORM_ROLE]:
            return f"roles {roles} instead of [{PLATFORM_ROLE!r}]"
        refused = self._login_refused(username, password)
        if refused is not None:
            return f"the broker refused its password: {refused}"
        return None

    def _login_refused(self, username: str, password: str) -> str | None:
        """Try one MQTT 5 login; None if the broker accepted it, else why it did not."""
        answer: list[str | None] = []
        answered = threading.Event()

        def on_connect(
            client: mqtt.Client, _u: object, _f: object, reason: Any, _p: object
        ) -> None:
            answer.append(str(reason) if reason.is_failure else None)
            answered.set()
            client.disconnect()

        check = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"autocloud-check-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        check.username_pw_set(username, password)
        check.on_connect = on_connect
        check.on_disconnect = lambda *_args: answered.set()
        try:
            check.connect(self._host, self._port, keepalive=30, clean_start=True)
        except (OSError, ValueError) as exc:
            return f"cannot connect: {exc}"
        check.loop_start()
        try:
            answered.wait(self._timeout)
        finally:
            check.disconnect()
            check.loop_stop()
        if not answer:
            return "no CONNACK"
        return answer[0]

    def close(self) -> None:
        """Disconnect the admin connection and stop its network thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- commands ------------------------------------------------------------------------------

    def _grant_chunk(self, secrets: dict[str, str]) -> None:
        roles = {vin: vehicle_role(vin) for vin in secrets}
        self._run([_create_role(roles[vin], vehicle_acls(vin)) for vin in secrets])
        # A vehicle's login is bound to client id = VIN: with another id (the platform's, or
        # another vehicle's) the broker refuses it, so it cannot take over a session.
        self._upsert_clients(secrets, roles, bind_client_id=True)

    def _upsert_clients(
        self, passwords: dict[str, str], roles: dict[str, str], *, bind_client_id: bool = False
    ) -> None:
        """Create clients; those that exist get their password and roles replaced instead.

        With `bind_client_id`, each login may only connect with client id = its username.
        """

        def bound(name: str) -> JsonObject:
            return {"clientid": name} if bind_client_id else {}

        created = self._run(
            [
                {**_create_client(name, password, roles[name]), **bound(name)}
                for name, password in passwords.items()
            ],
            tolerate={_CLIENT_EXISTS},
        )
        existing = [
            name for name, reply in zip(passwords, created, strict=True) if reply.get("error")
        ]
        if existing:
            self._run(
                [
                    {
                        "command": "modifyClient",
                        "username": name,
                        "password": passwords[name],
                        "roles": [{"rolename": roles[name]}],
                        **bound(name),
                    }
                    for name in existing
                ]
            )

    @staticmethod
    def _default_deny() -> JsonObject:
        return {
            "command": "setDefaultACLAccess",
            "acls": [
                {"acltype": "publishClientSend", "allow": False},
                {"acltype": "publishClientReceive", "allow": False},
                {"acltype": "subscribe", "allow": False},
                {"acltype": "unsubscribe", "allow": True},
            ],
        }

    def _run(
        self, commands: Sequence[JsonObject], *, tolerate: set[str] | frozenset[str] = frozenset()
    ) -> list[JsonObject]:
        """Send `commands` in one control message and return their replies, in order.

        An error reply raises `StoreUnavailable` unless it is harmless for its command (see
        `_HARMLESS_ERRORS`) or listed in `tolerate`.
        """
        replies = self._exchange(commands)
        for command, reply in zip(commands, replies, strict=True):
            error = reply.get("error")
            if error and error not in tolerate | _HARMLESS_ERRORS.get(command["command"], set()):
                raise StoreUnavailable(
                    f"Mosquitto at {self._where} refused dynamic-security command "
                    f"{command['command']} ({_subject(command)}): {error}"
                )
        return replies

    def _exchange(self, commands: Sequence[JsonObject]) -> list[JsonObject]:
        ids = [f"{self._prefix}-{next(self._counter)}" for _ in commands]
        batch = _Batch(remaining=set(ids))
        tagged = [{**c, "correlationData": i} for c, i in zip(commands, ids, strict=True)]
        with self._lock:
            self._pending.update(dict.fromkeys(ids, batch))
        try:
            self._publish(json.dumps({"commands": tagged}).encode())
            if not batch.done.wait(self._timeout):
                raise StoreUnavailable(self._no_answer())
        finally:
            with self._lock:
                for i in ids:
                    self._pending.pop(i, None)
        return [batch.replies[i] for i in ids]

    def _publish(self, payload: bytes) -> None:
        # `_ready` is set once (re)connected and subscribed to the replies.
        if not self._ready.wait(self._timeout) or not self._client.is_connected():
            raise StoreUnavailable(
                f"not connected to Mosquitto at {self._where}: check that the broker runs"
            )
        info = self._client.publish(CONTROL_TOPIC, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise StoreUnavailable(
                f"could not send to Mosquitto at {self._where}: {mqtt.error_string(info.rc)}"
            )

    def _no_answer(self) -> str:
        return (
            f"no answer from Mosquitto's dynamic-security plugin at {self._where} within "
            f"{self._timeout:g} s: check that the broker runs with plugin {DYNSEC_PLUGIN_NAME} "
            f"loaded and that user {self._admin_user!r} holds its admin role"
        )

    # -- connection ----------------------------------------------------------------------------

    def _make_client(self, user: str, password: str) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"autocloud-dynsec-{self._prefix}",
            protocol=mqtt.MQTTv5,
        )
        client.username_pw_set(user, password)
        client.connect_timeout = self._timeout
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    def _connect(self, host: str, port: int) -> None:
        try:
            self._client.connect(host, port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise StoreUnavailable(
                f"cannot reach Mosquitto at {self._where}: {exc}; check host, port and that "
                "the broker runs"
            ) from exc
        self._client.loop_start()
        ready = self._ready.wait(self._timeout)
        if self._refused is not None or not ready:
            self.close()
        if self._refused is not None:
            raise ConfigurationError(
                f"Mosquitto at {self._where} refused the dynamic-security admin "
                f"{self._admin_user!r}: {self._refused}; check the admin user and password"
            )
        if not ready:
            raise StoreUnavailable(self._no_answer())
        self._starting = False

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: Any, _props: object
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            if self._starting:
                client.disconnect()  # no retries: the constructor reports the refusal
            self._ready.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: object, _mid: int, reasons: Any, _props: object
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            self._refused = f"subscription to {RESPONSE_TOPIC} refused"
        self._ready.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, _reason: Any, _p: object
    ) -> None:
        self._ready.clear()

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: Any) -> None:
        """Hand each reply to the batch that waits for it; replies of other admins are ignored."""
        try:
            replies = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            for reply in replies if isinstance(replies, list) else []:
                tag = reply.get("correlationData") if isinstance(reply, dict) else None
                batch = self._pending.get(tag) if isinstance(tag, str) else None
                if batch is not None and isinstance(tag, str):
                    batch.replies[tag] = reply
                    batch.remaining.discard(tag)
                    if not batch.remaining:
                        batch.done.set()


def _create_client(username: str, password: str, rolename: str) -> JsonObject:
    return {
        "command": "createClient",
        "username": username,
        "password": password,
        "roles": [{"rolename": rolename}],
    }


def _create_role(rolename: str, acls: list[JsonObject]) -> JsonObject:
    return {"command": "createRole", "rolename": rolename, "acls": acls}


def _subject(command: JsonObject) -> str:
    return str(command.get("username") or command.get("rolename") or "defaults")


def _chunks(items: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


# -- broker configuration ----------------------------------------------------------------------


def find_dynsec_plugin(plugin: Path | None = None) -> Path:
    """Path of the dynamic-security plugin: `plugin` if given, else the distribution's copy."""
    if plugin is not None:
        candidates = [plugin]
    else:
        patterns = [
            f"/usr/lib/*/{DYNSEC_PLUGIN_NAME}",
            f"/usr/lib/{DYNSEC_PLUGIN_NAME}",
            f"/usr/local/lib/{DYNSEC_PLUGIN_NAME}",
            f"/usr/local/lib/*/{DYNSEC_PLUGIN_NAME}",
        ]
        candidates = [Path(p) for pattern in patterns for p in sorted(glob.glob(pattern))]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = str(plugin) if plugin is not None else "/usr/lib/*/ or /usr/local/lib/"
    raise ConfigurationError(f"{DYNSEC_PLUGIN_NAME} not found in {where}: {INSTALL_HINT}")


def write_mosquitto_config(
    directory: Path,
    *,
    port: int,
    admin_user: str,
    admin_password: str,
    host: str = "127.0.0.1",
    plugin: Path | None = None,
) -> Path:
    """Write `mosquitto.conf` (and a fresh `dynamic-security.json`) into `directory`.

    The broker listens on `host:port`, refuses anonymous clients and authorises everybody
    through the dynamic-security plugin, whose state lives next to the config; an existing
    `dynamic-security.json` is kept, so re-running keeps all vehicles. Returns the config path.
    """
    plugin_path = find_dynsec_plugin(plugin)
    directory.mkdir(parents=True, exist_ok=True)
    directory = directory.resolve()
    dynsec_file = directory / DYNSEC_FILE_NAME
    if not dynsec_file.exists():
        _init_dynsec(dynsec_file, admin_user, admin_password)
    config = directory / "mosquitto.conf"
    config.write_text(_config_text(directory, host, port, plugin_path, dynsec_file))
    return config


def _config_text(directory: Path, host: str, port: int, plugin: Path, dynsec_file: Path) -> str:
    # `user`: a broker started as root drops to this user; the directory belongs to the caller,
    # so the broker stays the caller (no effect when started as non-root).
    lines = [
        "# Written by autocloud (adapters/mosquitto.py); vehicles are managed through dynsec.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"listener {port} {host}",
        f"plugin {plugin}",
        f"plugin_opt_config_file {dynsec_file}",
        "persistence true",
        f"persistence_location {directory}/",
        "autosave_interval 60",
        "# The platform consumer acks (QoS 1) only after a durable write: give it a deep window",
        "# and keep a large backlog for it instead of dropping messages while it restarts.",
        "max_inflight_messages 1000",
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
        # Larger than the platform's own limit, so an oversize message is dead-lettered with
        # its reason; far larger ones are dropped by the broker before they cost memory.
        "max_packet_size 1048576",
        "set_tcp_nodelay true",
        "persistent_client_expiration 30d",
        f"log_dest file {directory / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        f"pid_file {directory / 'mosquitto.pid'}",
        f"user {pwd.getpwuid(os.geteuid()).pw_name}",
    ]
    return "\n".join(lines) + "\n"


def _init_dynsec(dynsec_file: Path, admin_user: str, admin_password: str) -> None:
    ctrl = shutil.which("mosquitto_ctrl")
    if ctrl is None:
        raise ConfigurationError(f"mosquitto_ctrl not found on PATH: {INSTALL_HINT}")
    result = subprocess.run(
        [ctrl, "dynsec", "init", str(dynsec_file), admin_user, admin_password],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if result.returncode != 0 or not dynsec_file.exists():
        raise ConfigurationError(
            f"mosquitto_ctrl dynsec init {dynsec_file} failed: "
            f"{(result.stderr or result.stdout).strip()}"
        )
    dynsec_file.chmod(0o600)  # password hashes: for the broker's user only
