"""The background iterator that validation reads the file with."""

from __future__ import annotations

import pytest

from backups_app.prefetch import Prefetched


def test_items_arrive_in_order_and_the_thread_ends():
    items = Prefetched(range(1000), depth=3)
    assert list(items) == list(range(1000))
    assert list(items) == []
    assert not items._thread.is_alive()


def test_an_error_in_the_producer_reaches_the_consumer_after_the_items_before_it():
    def produce():
        yield 1
        yield 2
        raise ValueError("damaged")

    items = Prefetched(produce())
    assert next(items) == 1
    assert next(items) == 2
    with pytest.raises(ValueError, match="damaged"):
        next(items)


def test_closing_early_stops_a_producer_that_is_waiting_for_room():
    produced = []

    def produce():
        for number in range(10_000):
            produced.append(number)
            yield number

    items = Prefetched(produce(), depth=2)
    assert next(items) == 0
    items.close()
    assert not items._thread.is_alive()
    assert len(produced) < 10
