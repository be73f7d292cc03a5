"""The embedded vehicle broker: amqtt 0.12 running inside the platform process.

The embedded tier (laptop, demo, most tests) needs an MQTT broker without installing one, so
`EmbeddedBroker` runs an `amqtt.broker.Broker` on its own asyncio event loop in a daemon thread.
Vehicles connect with username = VIN and their secret; the platform's own paho client connects
as the platform user. The broker itself enforces the vehicle protocol's identity rule
(DESIGN.md §4): a vehicle may publish, subscribe and receive only under `vehicles/{its VIN}/`,
the platform user may use every topic, anonymous clients are refused.

How the rules reach amqtt: amqtt's plugin manager instantiates plug-ins itself from a dotted
path and fills each plug-in's dataclass `Config` from the broker configuration (with `dacite`,
which passes objects through unchanged). Each broker therefore gets its own `AccessPolicy`
object inside its own configuration: no module-level registry, so two brokers in one process
(two tests, two tenants) never see each other's vehicles.

amqtt 0.12 behaviour that this module relies on or corrects (read from its source):

- Topic plug-ins are consulted for SUBSCRIBE, for RECEIVE (each delivery to each subscriber)
  and, since plug-ins are configured through the `plugins` section, for PUBLISH too: a refused
  PUBLISH is dropped before it reaches any subscriber. The QoS 1 PUBACK is still sent (MQTT
  3.1.1 has no way to say "refused"), so a misbehaving vehicle sees no error.
- amqtt looks up and deletes (clean session) or re-labels (persistent session) the stored
  session of a client id *before* it authenticates the CONNECT, and it stores refused sessions.
  Anyone able to reach the port could thereby wipe the platform's subscriptions by connecting
  with its client id and no password. `_GuardedBroker` authenticates first and refuses before
  any stored session is touched; the auth plug-in also refuses a client id held by a session of
  another user, so a vehicle cannot take over or resume another identity's session.
- When a persistent session reconnects, amqtt replays retained messages for *every*
  subscription filter in the broker, not just the session's own; with the platform subscribed
  to `vehicles/#` a vehicle would receive every other vehicle's retained `state` and `config`.
  `_GuardedBroker` replays only for the session's own subscriptions.
- The will message is published without any PUBLISH check, so a vehicle's will topic is checked
  at CONNECT: a will outside the vehicle's own tree refuses the connection.
- amqtt PUBACKs a QoS 1 message when it queues it and dropped the still-queued ones when the
  client disconnected (a burst of 300 then DISCONNECT lost a dozen); `_GuardedBroker` routes
  them before ending the session.
- A connection that sends no complete CONNECT is closed after `connect_timeout_s` (amqtt would
  hold it forever, and on Python 3.12 that also stalled the broker's shutdown).
- amqtt routes each message by matching its topic against every subscription filter (three
  per connected vehicle); `_Subscriptions` indexes the filters and `_GuardedBroker` looks the
  topic up instead (most of the embedded platform's CPU under command load, before).
- MQTT 5 is not supported by amqtt 0.12: it serves protocol level 4 only, and in practice it
  misreads a paho v5 CONNECT (the properties) and waits for more bytes, so a v5 client gets no
  CONNACK and is closed after `connect_timeout_s`. Vehicles and the platform must speak MQTT
  3.1.1 to the embedded broker (MessagePack content types need MQTT 5: Mosquitto tier only).
- Throughput is modest: measured here, one paho QoS 1 publisher reaches the platform's
  subscriber at roughly 1-2k msg/s end to end (PUBACKs at ~3k msg/s, the rest queues in the
  broker); fine for the embedded tier, not for fleets (use Mosquitto).
"""

import asyncio
import contextlib
import errno
import hmac
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext, BrokerConfig, ListenerConfig, ListenerType
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.plugins.manager import plugins_manager as _amqtt_plugin_managers
from amqtt.session import Session
from amqtt.utils import gen_client_id

from autocloud.domain.errors import ConfigurationError
from autocloud.domain.gateway import gateway_may_publish, is_gateway_username

__all__ = [
    "TOPIC_ROOT",
    "AccessPolicy",
    "EmbeddedAccess",
    "EmbeddedBroker",
    "VehicleAuthPlugin",
    "VehicleTopicPlugin",
]

logger = logging.getLogger(__name__)

TOPIC_ROOT = "vehicles"
"""First level of every vehicle topic: `vehicles/{vin}/...` (DESIGN.md §4)."""

_NOT_IN_USERNAME = frozenset("/+#\x00")
"""Characters that would let a username escape or widen its `vehicles/{vin}/` prefix."""

_PRE_AUTHENTICATED = "autocloud.pre_authenticated"
"""Session attribute set by `_GuardedBroker` once the CONNECT passed the auth plug-ins."""


def _same_secret(given: str, expected: str) -> bool:
    """Compare two secrets in constant time (bytes, so non-ASCII input cannot raise)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def _is_vehicle_username(username: str) -> bool:
    """Whether `username` can name a topic level of its own (no `/`, wildcard or NUL)."""
    return bool(username) and _NOT_IN_USERNAME.isdisjoint(username)


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Who may connect to one embedded broker and which topics each identity may use.

    One instance is shared by the auth and topic plug-ins of one broker. `verify_vehicle` is a
    blocking check against the registry (a database), so the plug-ins run it in a worker thread.
    """

    verify_vehicle: Callable[[str, str], bool]
    platform_user: str
    platform_password: str = field(repr=False)
    # Fleet gateways: `verify_gateway(login, secret)` returns the granted VINs (None: refused);
    # `gateway_vins` holds each connected gateway's current grants, replaced on every change.
    verify_gateway: Callable[[str, str], frozenset[str] | None] | None = None
    gateway_vins: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def may_publish_for(self, username: str | None, vin: str) -> bool:
        """Whether `username` may publish data for `vin`: the vehicle itself or a gateway
        granted it (the ingest tap asks this for every message it takes)."""
        if username == vin:
            return True
        return is_gateway_username(username) and vin in self.gateway_vins.get(username or "", ())

    def gateway_may(self, username: str, topic: str | None, action: object) -> bool:
        """A gateway may only PUBLISH data topics of its granted VINs; nothing else."""
        if action != Action.PUBLISH:
            return False
        return gateway_may_publish(topic, self.gateway_vins.get(username, frozenset()))

    def is_platform(self, username: str | None) -> bool:
        """Whether `username` is the platform's own identity."""
        return username is not None and username == self.platform_user

    def may_use(self, username: str | None, topic: str | None) -> bool:
        """Whether `username` may publish to, subscribe to or receive from `topic`.

        `topic` is a topic name or a subscription filter. The platform may use every topic. A
        vehicle may use a topic only under `vehicles/{its VIN}/`: wildcards after that prefix
        stay inside its own tree, while filters such as `#`, `vehicles/+/#` or another VIN's
        tree do not start with the prefix and are refused.
        """
        if not username or not topic:
            return False
        if self.is_platform(username):
            return True
        if is_gateway_username(username):
            return False  # see gateway_may: publish only, checked with the action
        return _is_vehicle_username(username) and topic.startswith(f"{TOPIC_ROOT}/{username}/")


def _policy_from(config: Any, plugin: str) -> AccessPolicy:
    """The `AccessPolicy` that `EmbeddedBroker` put into a plug-in's configuration."""
    policy = getattr(config, "policy", None)
    if not isinstance(policy, AccessPolicy):
        raise ConfigurationError(
            f"{plugin} needs an AccessPolicy in its configuration; start the broker through "
            "autocloud.adapters.amqtt_broker.EmbeddedBroker"
        )
    return policy


def _plugin_path(cls: type) -> str:
    """The dotted path under which amqtt's plug-in manager imports `cls`."""
    return f"{cls.__module__}.{cls.__qualname__}"


class VehicleAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type hints
    """Authenticates the platform user and vehicles; refuses anonymous clients.

    - The platform user is checked against its configured password in constant time.
    - Any other username is a VIN, checked by `AccessPolicy.verify_vehicle` in a worker thread
      (it reads a database) so that the broker's event loop keeps serving other clients. A
      failing check (exception) refuses the connection: fail closed.
    - A CONNECT whose will topic lies outside the client's own tree is refused, because amqtt
      publishes a will without a PUBLISH check.
    - A vehicle must connect with client id = its VIN (as Mosquitto's dynsec binds it), and a
      client id held by a session of another username is refused, so that nobody takes over,
      resumes or deletes another identity's session.
    """

    @dataclass
    class Config:
        """Plug-in configuration, filled by amqtt from the broker configuration."""

        policy: AccessPolicy | None = None

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._policy = _policy_from(self.config, type(self).__name__)

    async def authenticate(self, *, session: Session) -> bool:
        """Return True to accept the CONNECT of `session`, False to refuse it."""
        username: str | None = session.username
        if not username:
            logger.info("MQTT connection refused: anonymous (client id %r)", session.client_id)
            return False
        if not await self._credential_ok(username, session.password or ""):
            logger.info("MQTT connection refused: bad credential for %r", username)
            return False
        if is_gateway_username(username) and session.will_flag:
            logger.info("MQTT connection refused: gateway %r may not set a will", username)
            return False
        if not self._policy.is_platform(username) and session.client_id != username:
            logger.info(
                "MQTT connection refused: vehicle %r must connect with client id = its VIN, not %r",
                username,
                session.client_id,
            )
            return False
        if session.will_flag and not self._policy.may_use(username, session.will_topic):
            logger.warning(
                "MQTT connection refused: %r set its will on foreign topic %r",
                username,
                session.will_topic,
            )
            return False
        holder = self.context.get_session(session.client_id) if session.client_id else None
        if holder is not None and holder is not session and holder.username != username:
            logger.warning(
                "MQTT connection refused: %r used client id %r, held by another user",
                username,
                session.client_id,
            )
            return False
        return True

    async def _credential_ok(self, username: str, password: str) -> bool:
        """Check the platform password, or ask the registry about a vehicle's secret."""
        if self._policy.is_platform(username):
            return _same_secret(password, self._policy.platform_password)
        if not _is_vehicle_username(username) or not password:
            return False
        if is_gateway_username(username):
            return await self._gateway_ok(username, password)
        try:
            return bool(await asyncio.to_thread(self._policy.verify_vehicle, username, password))
        except Exception:
            logger.exception("Vehicle credential check failed for %r; refusing", username)
            return False

    async def _gateway_ok(self, username: str, password: str) -> bool:
        """Check a gateway's secret through the platform and remember its granted VINs."""
        verify = self._policy.verify_gateway
        if verify is None:
            return False
        try:
            vins = await asyncio.to_thread(verify, username, password)
        except Exception:
            logger.exception("Gateway credential check failed for %r; refusing", username)
            return False
        if vins is None:
            return False
        self._policy.gateway_vins[username] = vins
        return True


class VehicleTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]  # amqtt ships no type hints
    """Applies `AccessPolicy.may_use` to every PUBLISH, SUBSCRIBE and RECEIVE."""

    @dataclass
    class Config:
        """Plug-in configuration, filled by amqtt from the broker configuration."""

        policy: AccessPolicy | None = None

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._policy = _policy_from(self.config, type(self).__name__)

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        """Return True if the session's user may perform `action` on `topic`."""
        username: str | None = session.username if session is not None else None
        if is_gateway_username(username) and username is not None:
            allowed = self._policy.gateway_may(username, topic, action)
        else:
            allowed = self._policy.may_use(username, topic)
        if not allowed:
            logger.info("MQTT %s refused: %r on topic %r", action, username, topic)
        return allowed


class _Subscriptions(dict[str, list[Any]]):
    """amqtt's subscription table (filter -> [(session, qos)]), indexed, walked over snapshots.

    Indexed: amqtt 0.12.1 routes every message by matching its topic against *every* filter
    (`Broker._run_broadcast`, with a debug f-string per filter). With 1,000 vehicles each
    subscribed to three exact filters of their own (`vehicles/{vin}/commands`, ...), that was
    3,000 comparisons per message and 44-60 % of the embedded platform's CPU under command
    load (BENCHMARKS.md, commands). `matching` looks a topic up instead: the filters without
    wildcards by the topic itself (one dict look-up), and the wildcard filters grouped by
    their literal levels before the first wildcard, so only those whose prefix is one of
    the topic's own are tried (`vehicles/+/state` by `vehicles`, `vehicles/{vin}/#` by
    `vehicles/{vin}`). The index follows every change made through the dict's methods.

    Snapshots: amqtt walks the table in coroutines that await inside the loop (the
    broadcast, and the retained-message replay for a resumed session). A client that
    subscribes meanwhile changes the dict, the walk died with "dictionary changed size
    during iteration" and that message reached no subscriber (seen 152 times in one minute
    of `make demo` while its 200 cars connected). Iteration, `items` and `matching` hand out
    copies, so both proceed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        # (literal levels before the first wildcard, those levels joined) -> wildcard filters
        self._wild: dict[tuple[int, str], set[str]] = {}
        self.update(*args, **kwargs)

    @staticmethod
    def _prefix(topic_filter: str) -> tuple[int, str] | None:
        """The bucket of a wildcard filter; None for a filter without wildcards."""
        if "+" not in topic_filter and "#" not in topic_filter:
            return None
        levels = topic_filter.split("/")
        literal = 0
        while literal < len(levels) and levels[literal] not in ("+", "#"):
            literal += 1
        # A malformed filter ("a+/b") never reaches the table (amqtt refuses it); should one,
        # it is put where `_matches` is asked about it for every topic: it still never matches.
        if any("+" in level or "#" in level for level in levels[:literal]):
            literal = 0
        return literal, "/".join(levels[:literal])

    def __setitem__(self, topic_filter: str, subscriptions: list[Any]) -> None:
        super().__setitem__(topic_filter, subscriptions)
        bucket = self._prefix(topic_filter)
        if bucket is not None:
            self._wild.setdefault(bucket, set()).add(topic_filter)

    def __delitem__(self, topic_filter: str) -> None:
        super().__delitem__(topic_filter)
        self._unindex(topic_filter)

    def _unindex(self, topic_filter: str) -> None:
        bucket = self._prefix(topic_filter)
        if bucket is None:
            return
        held = self._wild.get(bucket)
        if held is not None:
            held.discard(topic_filter)
            if not held:
                del self._wild[bucket]

    def pop(self, topic_filter: str, *default: Any) -> Any:
        present = topic_filter in self
        value = super().pop(topic_filter, *default)
        if present:
            self._unindex(topic_filter)
        return value

    def popitem(self) -> tuple[str, list[Any]]:
        topic_filter, subscriptions = super().popitem()
        self._unindex(topic_filter)
        return topic_filter, subscriptions

    def setdefault(self, topic_filter: str, default: list[Any] | None = None) -> list[Any]:
        if topic_filter not in self:
            self[topic_filter] = [] if default is None else default
        return self[topic_filter]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for topic_filter, subscriptions in dict(*args, **kwargs).items():
            self[topic_filter] = subscriptions

    def clear(self) -> None:
        super().clear()
        self._wild.clear()

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> list[tuple[str, list[Any]]]:  # type: ignore[override]
        return list(super().items())

    def matching(
        self, topic: str, matches: Callable[[str, str], bool]
    ) -> list[tuple[str, list[Any]]]:
        """The filters that `topic` matches, each with a copy of its subscribers.

        `matches(topic, filter)` is amqtt's own rule (`Broker._matches`: wildcards, and `$`
        topics not matched by filters that start with a wildcard); it is asked only about
        the exact filter and the wildcard filters whose literal prefix is one of the topic's.
        """
        found: list[tuple[str, list[Any]]] = []
        exact = dict.get(self, topic)
        if exact:
            found.append((topic, list(exact)))
        if not self._wild:
            return found
        levels = topic.split("/")
        for literal in range(len(levels) + 1):
            filters = self._wild.get((literal, "/".join(levels[:literal])))
            if not filters:
                continue
            for topic_filter in sorted(filters):
                subscriptions = dict.get(self, topic_filter)
                if subscriptions and matches(topic, topic_filter):
                    found.append((topic_filter, list(subscriptions)))
        return found


class _GuardedBroker(Broker):  # type: ignore[misc]  # amqtt ships no type hints
    """amqtt's broker with authentication moved before session handling.

    Overrides private amqtt 0.12 methods (see the module docstring for why); the integration
    tests pin the behaviour, so an amqtt upgrade that changes these internals fails loudly.
    """

    def __init__(
        self, config: BrokerConfig, *, plugin_namespace: str, connect_timeout_s: float
    ) -> None:
        super().__init__(config, plugin_namespace=plugin_namespace)
        self._subscriptions = _Subscriptions()
        self._connect_timeout_s = connect_timeout_s
        self._awaiting_connect: set[Any] = set()  # writers of connections not past CONNECT yet
        self.tap: Any = None  # amqtt_link.IngestTap: holds vehicles' PUBACKs until ingest commits

    async def shutdown(self) -> None:
        """Close connections still waiting for their CONNECT, then shut down as amqtt does.

        amqtt closes the connections that have a session; on Python 3.12 the listener's
        `wait_closed()` also waits for the others (a half-open socket, an MQTT 5 client whose
        CONNECT amqtt cannot parse), which would stall the shutdown until they time out.
        """
        for writer in list(self._awaiting_connect):
            with contextlib.suppress(Exception):
                await writer.close()
        await super().shutdown()

    async def _initialize_client_session(
        self,
        reader: Any,
        writer: Any,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        """Read the CONNECT, authenticate it, then look up or replace the stored session.

        Mirrors `Broker._initialize_client_session` of amqtt 0.12.1 with two changes: a CONNECT
        that the auth plug-ins refuse is answered with "not authorised" and closed *before* any
        stored session is deleted, re-labelled or created; and a connection that sends no
        complete CONNECT within `connect_timeout_s` is closed instead of held forever.
        """
        self._awaiting_connect.add(writer)
        try:
            handler, incoming = await asyncio.wait_for(
                BrokerProtocolHandler.init_from_connect(reader, writer, self.plugins_manager),
                self._connect_timeout_s,
            )
        except TimeoutError as exc:
            await writer.close()
            raise AMQTTError(
                f"no complete CONNECT from {remote_address}:{remote_port} within "
                f"{self._connect_timeout_s:g} s (an MQTT 5 client?)"
            ) from exc
        except (AMQTTError, NoDataError) as exc:
            raise AMQTTError(exc) from exc
        except MQTTError as exc:
            await writer.close()
            raise MQTTError(exc) from exc
        finally:
            self._awaiting_connect.discard(writer)

        if not await super()._authenticate(incoming, None):
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(
                f"not authorised: user {incoming.username!r} from {remote_address}:{remote_port}"
            )

        client_session: Session = incoming
        if incoming.clean_session:
            if incoming.client_id:
                await self._delete_session(incoming.client_id)
            else:
                incoming.client_id = gen_client_id()
            incoming.parent = 0
        elif incoming.client_id in self._sessions:
            stored: Session = self._sessions[incoming.client_id][0]
            for name in (
                "will_flag",
                "will_message",
                "will_topic",
                "will_qos",
                "will_retain",
                "keep_alive",
                "username",
                "password",
            ):
                setattr(stored, name, getattr(incoming, name))
            client_session = stored
            client_session.parent = 1
        else:
            incoming.parent = 0

        delay = self.config.get("timeout-disconnect-delay", 0)
        if client_session.keep_alive > 0 and isinstance(delay, int):
            client_session.keep_alive += delay
        client_session.attributes[_PRE_AUTHENTICATED] = True
        if self.tap is not None:
            self.tap.attach(handler, client_session)
        return handler, client_session

    async def _authenticate(self, session: Session, listener: Any) -> bool:
        """Reuse the verdict of `_initialize_client_session` (one registry query per CONNECT)."""
        if session.attributes.pop(_PRE_AUTHENTICATED, False):
            return True
        return bool(await super()._authenticate(session, listener))

    async def _handle_disconnect(
        self, client_session: Session, handler: Any, disconnect_waiter: Any
    ) -> None:
        """Pass on the messages already acknowledged to the client, then end its session.

        amqtt sends the QoS 1 PUBACK when it queues an incoming message, and routes the queue
        one message at a time; when the client disconnects, whatever is still queued used to be
        dropped, so a vehicle that published a burst and went to sleep lost messages it had been
        told were delivered. At most one message (the one amqtt was about to route) may reach
        subscribers after the drained ones; the platform orders by `seq` anyway.
        """
        pending = client_session.delivered_message_queue
        while not pending.empty():
            delivered = asyncio.get_running_loop().create_future()
            delivered.set_result(pending.get_nowait())
            if not await self._handle_message_delivery(client_session, handler, delivered):
                break  # a protocol violation: amqtt would close the connection here too
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        """Replay retained messages only for a filter that `session` itself subscribed to."""
        holders = self._subscriptions.get(subscription[0], [])
        if any(holder.client_id == session.client_id for holder, _qos in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)

    async def _run_broadcast(self, running_tasks: Any) -> None:
        """Route one queued message to its subscribers.

        Mirrors `Broker._run_broadcast` of amqtt 0.12.1 (the RECEIVE topic check, messages
        kept for disconnected persistent sessions, one `mqtt_publish` task per delivery)
        with two changes: the subscribers are looked up in the table's index
        (`_Subscriptions.matching`) instead of matching the topic against every filter, and
        no debug message is formatted per filter and subscriber.
        """
        broadcast = await self._broadcast_queue.get()
        topic = broadcast["topic"]
        for _filter, subscriptions in self._subscriptions.matching(topic, self._matches):
            for target_session, sub_qos in subscriptions:
                qos = broadcast.get("qos", sub_qos)
                if not await self._topic_filtering(target_session, topic, Action.RECEIVE):
                    logger.info(
                        "%s not allowed to receive messages from topic %s",
                        target_session.client_id,
                        topic,
                    )
                    continue
                connected = target_session.transitions.state == "connected"
                if (
                    not connected
                    and not target_session.clean_session
                    and qos in (QOS_1, QOS_2)
                    and not target_session.is_anonymous
                ):
                    await self._retain_broadcast_message(broadcast, qos, target_session)
                    continue
                if not connected:
                    continue
                handler = self._get_handler(target_session)
                if handler:
                    publish = handler.mqtt_publish(topic, broadcast["data"], qos, retain=False)
                    running_tasks.append(asyncio.ensure_future(publish))

    def enqueue(self, topic: str, payload: bytes, qos: int) -> None:
        """Queue a message of the platform's own for routing (on the broker's loop): what
        `internal_message_broadcast` does, without a coroutine round trip."""
        self._broadcast_queue.put_nowait(
            {"session": None, "topic": topic, "data": payload, "qos": qos}
        )

    async def drop_sessions_of(self, username: str) -> int:
        """Disconnect and forget every session of `username`; return how many there were.

        Uses amqtt's own per-session cleanup (the one `shutdown` uses): the handler stops, the
        socket closes, subscriptions and queued messages are deleted (including, possibly,
        messages the client published that amqtt acknowledged but had not routed yet). The
        client's will, if it set one, is published as for any abnormal disconnect.
        """
        client_ids = [cid for cid, (s, _h) in self._sessions.items() if s.username == username]
        for client_id in client_ids:
            await self._cleanup_session(client_id)
        return len(client_ids)


def _port_in_use(exc: BaseException) -> bool:
    """Whether `exc` or one of its causes is "address already in use"."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.EADDRINUSE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class EmbeddedBroker:
    """An amqtt MQTT broker served from a daemon thread of the platform process.

    `start()` returns once the listener is bound and listening (so TCP connections are
    accepted), `stop()` shuts the broker down and joins its thread. Also a context manager.
    Nothing else touches the broker's event loop, so blocking code elsewhere in the process
    cannot stall it (and vice versa).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        verify_vehicle: Callable[[str, str], bool],
        platform_user: str,
        platform_password: str,
        start_timeout_s: float = 10.0,
        stop_timeout_s: float = 15.0,
        connect_timeout_s: float = 10.0,
        session_expiry_s: int | None = 86_400,
        verify_gateway: Callable[[str, str], frozenset[str] | None] | None = None,
    ) -> None:
        """Configure the broker; nothing listens before `start()`.

        `port` 0 asks the OS for a free port (read it back from `port` after `start()`).
        `verify_vehicle(vin, secret)` is called, in a worker thread, for every login other than
        the platform user's. A connection that sends no complete CONNECT within
        `connect_timeout_s` is closed (amqtt would wait forever, e.g. for an MQTT 5 client).
        `session_expiry_s` bounds how long a disconnected persistent
        session (subscriptions and queued QoS 1 messages) is kept.
        """
        if not platform_user or not _is_vehicle_username(platform_user):
            raise ConfigurationError(
                f"Invalid platform MQTT user {platform_user!r}: give a non-empty name "
                "without '/', '+', '#'"
            )
        if not platform_password:
            raise ConfigurationError(
                "The platform MQTT password is empty: set one in the settings, the embedded "
                "broker refuses logins without a password"
            )
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"Invalid MQTT port {port}: use 1-65535, or 0 for any")
        self._host = host
        self._port = port
        self._policy = AccessPolicy(
            verify_vehicle, platform_user, platform_password, verify_gateway
        )
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._session_expiry_s = session_expiry_s
        self._namespace = f"autocloud.embedded_broker.{uuid.uuid4().hex}"
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tap: Any = None
        self._stopping: asyncio.Event | None = None
        self._broker: _GuardedBroker | None = None
        self._startup_error: BaseException | None = None

    @property
    def host(self) -> str:
        """The address the broker listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The listening port (the OS-chosen one once started with port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """`mqtt://host:port`, for the platform's MQTT link and for vehicles."""
        return f"mqtt://{self._host}:{self._port}"

    @property
    def running(self) -> bool:
        """Whether the broker thread is serving."""
        return self._thread is not None and self._thread.is_alive() and self._broker is not None

    def start(self) -> None:
        """Start serving; return once the listener accepts connections.

        Raises `ConfigurationError` if the port is taken, the host does not resolve or the
        broker does not come up within `start_timeout_s`.
        """
        if self._thread is not None:
            raise ConfigurationError(f"The embedded MQTT broker on {self.url} is already started")
        self._check_port_free()
        self._startup_error = None
        ready = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(ready,), name=f"amqtt-broker-{self._port}", daemon=True
        )
        self._thread = thread
        thread.start()
        if not ready.wait(self._start_timeout_s):
            self.stop()
            raise ConfigurationError(
                f"The embedded MQTT broker did not start on {self._host}:{self._port} within "
                f"{self._start_timeout_s:g} s; see the log, or choose another port"
            )
        error = self._startup_error
        if error is not None:
            thread.join(self._stop_timeout_s)
            self._reset()
            raise self._startup_failure(error) from error
        logger.info("Embedded MQTT broker listening on %s", self.url)

    def stop(self) -> None:
        """Disconnect every client, close the listener and join the broker thread.

        Idempotent. The port is free again when this returns.
        """
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(stopping.set)
        thread.join(self._stop_timeout_s)
        if thread.is_alive():
            logger.warning(
                "Embedded MQTT broker thread did not stop within %g s", self._stop_timeout_s
            )
        self._reset()

    def disconnect(self, username: str, timeout_s: float = 5.0) -> int:
        """Drop every session of `username` (a VIN); return how many were dropped.

        Safe to call from any thread but the broker's own; a no-op when the broker is stopped.
        """
        loop, broker = self._loop, self._broker
        if loop is None or broker is None or not loop.is_running():
            return 0
        if self._thread is threading.current_thread():
            raise RuntimeError("EmbeddedBroker.disconnect() must not be called from its thread")
        future = asyncio.run_coroutine_threadsafe(broker.drop_sessions_of(username), loop)
        return future.result(timeout_s)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The broker's event loop (valid while it runs)."""
        if self._loop is None:
            raise ConfigurationError("the embedded broker is not running; call start() first")
        return self._loop

    def may_publish_for(self, username: str | None, vin: str) -> bool:
        """Whether `username` (a vehicle or a fleet gateway) may publish data for `vin`."""
        return self._policy.may_publish_for(username, vin)

    def set_gateway_vins(self, username: str, vins: frozenset[str]) -> None:
        """Replace a gateway's grants at once, for its connected session too."""
        self._policy.gateway_vins[username] = vins

    def forget_gateway(self, username: str) -> None:
        self._policy.gateway_vins.pop(username, None)

    def install_tap(self, tap: Any) -> None:
        """Hand vehicles' ingest messages to `tap` (see amqtt_link); None removes it.

        Applies to connections made from then on: install it before `start()`.
        """
        self._tap = tap
        if self._broker is not None:
            self._broker.tap = tap

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 as the broker itself (cloud to vehicle).

        A retained message is stored before this returns. Any other is handed to the
        broker's loop without waiting for it (a command's POST used to wait for the loop to
        run a coroutine, a thread hand-off of up to the switch interval): messages go out in
        the order of the calls, as the broker routes its queue in order.
        """
        loop, broker = self._loop, self._broker
        if loop is None or broker is None:
            raise ConfigurationError("the embedded broker is not running; call start() first")
        if not retain:
            try:
                loop.call_soon_threadsafe(broker.enqueue, topic, payload, QOS_1)
            except RuntimeError as exc:  # the loop closed meanwhile
                raise ConfigurationError(f"the embedded broker has stopped: {exc}") from exc
            return

        async def send() -> None:
            await broker.retain_message(None, topic, payload, 1)
            await broker.internal_message_broadcast(topic, payload, 1)

        asyncio.run_coroutine_threadsafe(send(), loop).result(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _reset(self) -> None:
        """Forget the stopped thread, and remove amqtt's global reference to our plug-ins."""
        _amqtt_plugin_managers.pop(self._namespace, None)
        self._thread = None
        self._loop = None
        self._stopping = None
        self._broker = None

    def _check_port_free(self) -> None:
        """Fail early with a clear message (rather than amqtt's traceback) if the port is taken."""
        if self._port == 0:
            return
        try:
            family, kind, proto, _name, address = socket.getaddrinfo(
                self._host, self._port, type=socket.SOCK_STREAM
            )[0]
        except socket.gaierror as exc:
            raise ConfigurationError(
                f"The embedded MQTT broker host {self._host!r} does not resolve: {exc}"
            ) from exc
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise self._startup_failure(exc) from exc

    def _startup_failure(self, exc: BaseException) -> ConfigurationError:
        """Translate a start-up failure into the project's error, saying what to do."""
        if _port_in_use(exc):
            return ConfigurationError(
                f"Port {self._port} on {self._host} is already in use, so the embedded MQTT "
                "broker cannot listen there: stop the program that holds it (another "
                "autocloud?) or configure another MQTT port"
            )
        return ConfigurationError(
            f"The embedded MQTT broker could not start on {self._host}:{self._port}: {exc}"
        )

    def _broker_config(self) -> BrokerConfig:
        """amqtt configuration: one TCP listener and our two plug-ins, nothing else."""
        plugin_config = {"policy": self._policy}
        return BrokerConfig(
            listeners={
                "default": ListenerConfig(type=ListenerType.TCP, bind=f"{self._host}:{self._port}")
            },
            session_expiry_interval=self._session_expiry_s,
            plugins={
                _plugin_path(VehicleAuthPlugin): plugin_config,
                _plugin_path(VehicleTopicPlugin): plugin_config,
            },
        )

    def _run(self, ready: threading.Event) -> None:
        """Thread body: own event loop until `stop()`."""
        try:
            asyncio.run(self._serve(ready))
        except BaseException as exc:
            if ready.is_set():
                logger.exception("Embedded MQTT broker stopped with an error")
            else:
                self._startup_error = exc
        finally:
            ready.set()

    async def _serve(self, ready: threading.Event) -> None:
        """Start the broker, signal `ready`, serve until `_stopping` is set, shut down."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        broker = _GuardedBroker(
            self._broker_config(),
            plugin_namespace=self._namespace,
            connect_timeout_s=self._connect_timeout_s,
        )
        broker.tap = self._tap
        await broker.start()
        if self._port == 0:
            self._port = broker._servers["default"].instance.sockets[0].getsockname()[1]
        self._broker = broker
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            self._broker = None
            try:
                await asyncio.wait_for(broker.shutdown(), self._stop_timeout_s - 1)
            except TimeoutError:
                logger.warning("Embedded MQTT broker shutdown timed out; closing its loop")


class EmbeddedAccess:
    """`VehicleAccess` for the embedded broker.

    In embedded mode the platform's registry (its database) is the single source of truth:
    the broker asks it, through `verify_vehicle`, at every CONNECT, and the topic rule follows
    from the VIN alone. So `grant` has nothing to store, and `revoke` only has to end the
    sessions that are already connected; the registry must already refuse the VIN (revoke it
    there first), otherwise the vehicle simply logs in again.
    """

    def __init__(self, broker: EmbeddedBroker) -> None:
        self._broker = broker

    def grant(self, vin: str, secret: str) -> None:
        """End sessions logged in with a previous secret; the registry holds the new one.

        The broker checks `(vin, secret)` against the registry at every CONNECT, so there is
        nothing to store; a rotated credential must still cut off whoever holds the old one.
        """
        self.revoke(vin)

    def revoke(self, vin: str) -> None:
        """Disconnect every connected session of `vin` now and drop its stored session.

        The credential check itself applies at the next CONNECT (via the registry). A will
        message the vehicle set (its "offline" state) is published as for a lost connection.
        """
        dropped = self._broker.disconnect(vin)
        if dropped:
            logger.info("Revoked %s: dropped %d MQTT session(s)", vin, dropped)


class EmbeddedGatewayAccess:
    """`GatewayAccess` for the embedded broker: the registry checks the login at CONNECT,
    and a change of grants applies to a connected gateway at once (no reconnect)."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self._broker = broker

    def set_gateway(self, username: str, secret: str | None, vins: frozenset[str]) -> None:
        """New grants apply now; a new secret (re-created gateway) ends the old session."""
        if secret is not None:
            self.remove_gateway(username)
        self._broker.set_gateway_vins(username, vins)

    def remove_gateway(self, username: str) -> None:
        self._broker.forget_gateway(username)
        dropped = self._broker.disconnect(username)
        if dropped:
            logger.info("Removed gateway %s: dropped %d MQTT session(s)", username, dropped)
