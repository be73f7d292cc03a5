"""amqtt's subscription table may change while the broker walks it (a subscribe during a
broadcast); the embedded broker's table walks a snapshot instead of failing."""

import asyncio
import threading

from autocloud.adapters.amqtt_broker import _Subscriptions


def test_a_subscription_added_during_a_walk_does_not_break_it() -> None:
    table = _Subscriptions({"vehicles/+/commands": [], "vehicles/+/keys": []})
    walked = []
    for topic_filter, _sessions in table.items():
        table[f"new/{topic_filter}"] = []  # a client subscribed meanwhile
        walked.append(topic_filter)
    for topic_filter in table:
        table.pop("vehicles/+/keys", None)  # and another unsubscribed
        walked.append(topic_filter)
    assert walked[:2] == ["vehicles/+/commands", "vehicles/+/keys"]
    assert set(table) == {"vehicles/+/commands", "new/vehicles/+/commands", "new/vehicles/+/keys"}


def test_the_walk_survives_awaits_that_let_subscribers_in() -> None:
    """The shape of amqtt's `_run_broadcast`: await inside the loop while others subscribe."""
    table = _Subscriptions({"a": [], "b": []})

    async def broadcast() -> list[str]:
        seen = []
        for topic_filter, _sessions in table.items():
            await asyncio.sleep(0)
            seen.append(topic_filter)
        return seen

    async def subscribe() -> None:
        for n in range(10):
            table[f"c{n}"] = []
            await asyncio.sleep(0)

    async def both() -> list[str]:
        seen, _ = await asyncio.gather(broadcast(), subscribe())
        return seen

    # A thread of its own: another test's event loop may still be set on this one.
    seen: list[list[str]] = []
    walker = threading.Thread(target=lambda: seen.append(asyncio.run(both())))
    walker.start()
    walker.join(timeout=30)
    assert seen == [["a", "b"]]
    assert len(table) == 12


def _reference_matches(topic: str, topic_filter: str) -> bool:
    """amqtt 0.12's own rule (`Broker._matches` does not use the broker's state)."""
    from amqtt.broker import Broker

    return bool(Broker._matches(_NoLog(), topic, topic_filter))


class _NoLog:
    class logger:  # noqa: N801 - stands in for the broker's attribute
        @staticmethod
        def debug(*_args: object) -> None:
            return None


FILTERS = [
    "vehicles/V1/commands",
    "vehicles/V1/keys",
    "vehicles/V2/commands",
    "vehicles/+/state",
    "vehicles/#",
    "vehicles/V1/#",
    "vehicles/+/+",
    "#",
    "+/V1/commands",
    "+",
    "/+",
    "a//+",
    "$SYS/#",
    "$SYS/broker",
    "vehicles/V1/commands/#",
]
TOPICS = [
    "vehicles/V1/commands",
    "vehicles/V2/commands",
    "vehicles/V1/state",
    "vehicles/V3/telemetry",
    "vehicles/V1/commands/result",
    "vehicles",
    "vehicles/V1",
    "other/V1/commands",
    "/x",
    "a//b",
    "a/b/c",
    "$SYS/broker",
    "$SYS/broker/load",
    "x",
]


def test_matching_finds_exactly_the_filters_amqtt_would_match() -> None:
    table = _Subscriptions({f: [(f, 1)] for f in FILTERS})
    for topic in TOPICS:
        expected = sorted(f for f in FILTERS if _reference_matches(topic, f))
        found = table.matching(topic, _reference_matches)
        assert sorted(f for f, _subs in found) == expected, topic
        assert all(subs == [(f, 1)] for f, subs in found)  # each filter once, its subscribers


def test_the_index_follows_every_change_to_the_table() -> None:
    table = _Subscriptions()
    table["vehicles/+/state"] = [("platform", 1)]
    table.setdefault("vehicles/V1/#", []).append(("V1", 1))
    table.update({"vehicles/V1/commands": [("V1", 1)]})
    assert {f for f, _ in table.matching("vehicles/V1/state", _reference_matches)} == {
        "vehicles/+/state",
        "vehicles/V1/#",
    }
    del table["vehicles/+/state"]
    table.pop("vehicles/V1/#")
    assert table.pop("absent", None) is None
    assert [f for f, _ in table.matching("vehicles/V1/state", _reference_matches)] == []
    assert [f for f, _ in table.matching("vehicles/V1/commands", _reference_matches)] == [
        "vehicles/V1/commands"
    ]
    table["#"] = [("spy", 0)]
    table.clear()
    assert table.matching("vehicles/V1/commands", _reference_matches) == []


def test_matching_hands_out_copies_of_the_subscribers() -> None:
    subscribers = [("V1", 1)]
    table = _Subscriptions({"vehicles/V1/commands": subscribers})
    ((_filter, found),) = table.matching("vehicles/V1/commands", _reference_matches)
    subscribers.append(("late", 1))  # a subscribe during the delivery's awaits
    assert found == [("V1", 1)]
