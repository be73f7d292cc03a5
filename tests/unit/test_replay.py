"""The (sid, seq) replay window: new, duplicate and stale numbers."""

from hypothesis import given
from hypothesis import strategies as st

from autocloud.domain.replay import WINDOW, SeqWindow, Verdict


def test_in_order_then_duplicate() -> None:
    w = SeqWindow()
    assert [w.offer(s) for s in (1, 2, 3)] == [Verdict.NEW] * 3
    assert w.offer(2) is Verdict.DUPLICATE
    assert w.offer(3) is Verdict.DUPLICATE


def test_out_of_order_within_window_is_new_once() -> None:
    w = SeqWindow()
    w.offer(100)
    assert w.offer(40) is Verdict.NEW
    assert w.offer(40) is Verdict.DUPLICATE
    assert w.offer(101) is Verdict.NEW


def test_older_than_window_is_stale() -> None:
    w = SeqWindow()
    w.offer(WINDOW + 10)
    assert w.offer(10) is Verdict.STALE
    assert w.offer(11) is Verdict.NEW


def test_big_jump_forgets_old_bits() -> None:
    w = SeqWindow()
    w.offer(5)
    w.offer(5 + 3 * WINDOW)
    assert w.offer(5 + 3 * WINDOW - 1) is Verdict.NEW


def test_storage_round_trip() -> None:
    w = SeqWindow()
    for s in (3, 9, 12, 700):
        w.offer(s)
    back = SeqWindow.from_stored(w.top, w.to_bytes())
    assert back == w
    assert back.offer(9) is Verdict.DUPLICATE


@given(st.lists(st.integers(min_value=0, max_value=3000), max_size=300))
def test_matches_a_set_model(seqs: list[int]) -> None:
    """Against a plain set: NEW exactly for unseen numbers within the window."""
    w, seen = SeqWindow(), set[int]()
    for s in seqs:
        verdict = w.offer(s)
        if w.top - s >= WINDOW:
            assert verdict is Verdict.STALE
        elif s in seen:
            assert verdict is Verdict.DUPLICATE
        else:
            assert verdict is Verdict.NEW
            seen.add(s)
