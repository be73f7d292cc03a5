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
