"""Sharing the default slots between owners, and a waiting job's place: the pure rule."""

import uuid
from datetime import UTC, datetime, timedelta

from app.slots import SlotJob, SlotState, forecast, may_start

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def job(owner: str, minute: int, seconds: float | None = None) -> SlotJob:
    return SlotJob(uuid.uuid4(), owner, NOW - timedelta(minutes=60 - minute), seconds)


def test_an_owner_filling_the_slots_leaves_the_next_one_to_a_waiting_owner():
    a1, a2, a3, b1 = job("alice", 1), job("alice", 2), job("alice", 3), job("bob", 4)
    state = SlotState(running=[a1], waiting=[a2, a3, b1])
    assert not may_start(state, a2.id, slots=2)
    assert not may_start(state, a3.id, slots=2)
    assert may_start(state, b1.id, slots=2)


def test_alone_an_owner_takes_every_slot():
    a1, a2, a3 = job("alice", 1), job("alice", 2), job("alice", 3)
    assert may_start(SlotState(running=[a1], waiting=[a2, a3]), a2.id, slots=2)
    assert may_start(SlotState(running=[a1, a2], waiting=[a3]), a3.id, slots=2), "the slot count is only a guide"


def test_with_free_slots_for_both_owners_nobody_waits():
    a1, a2, b1 = job("alice", 1), job("alice", 2), job("bob", 3)
    state = SlotState(running=[], waiting=[a1, a2, b1])
    assert may_start(state, a1.id, slots=4) and may_start(state, b1.id, slots=4)
    assert may_start(SlotState(running=[a1], waiting=[a2, b1]), a2.id, slots=4)


def test_on_one_slot_owners_take_turns_by_who_started_last():
    a2, b1 = job("alice", 2), job("bob", 3)
    state = SlotState(running=[], waiting=[a2, b1], last_started={"alice": NOW - timedelta(minutes=1)})
    assert not may_start(state, a2.id, slots=1), "alice's last job just had the slot"
    assert may_start(state, b1.id, slots=1)
    state.last_started["bob"] = NOW
    assert may_start(state, a2.id, slots=1) and not may_start(state, b1.id, slots=1)


def test_a_job_that_is_not_waiting_is_never_held_back():
    a1, b1 = job("alice", 1), job("bob", 2)
    assert may_start(SlotState(running=[a1], waiting=[b1]), uuid.uuid4(), slots=1)
    assert may_start(SlotState(running=[a1], waiting=[b1]), a1.id, slots=1)


def test_the_forecast_alternates_owners_and_counts_down_the_running_jobs():
    a1 = job("alice", 1, seconds=100)
    a2, a3, a4 = job("alice", 2, 300), job("alice", 3, 300), job("alice", 4, 300)
    b1, b2 = job("bob", 5, 60), job("bob", 6, 60)
    state = SlotState(running=[a1], waiting=[a2, a3, a4, b1, b2], last_started={"alice": NOW})
    places = forecast(state, slots=2, now=NOW)
    order = sorted(places, key=lambda i: places[i].position)
    # Each owner holds one of the two slots while both have jobs waiting; then alice has both.
    assert order == [b1.id, b2.id, a2.id, a3.id, a4.id]
    starts = {i: (p.expected_start_at - NOW).total_seconds() for i, p in places.items()}
    assert starts[b1.id] == 0, "a slot is free now"
    assert starts[b2.id] == 60, "b1's slot frees first and bob holds no other slot"
    assert starts[a2.id] == 100, "a1's slot"
    assert starts[a3.id] == 120 and starts[a4.id] == 400


def test_an_unknown_duration_leaves_later_starts_unknown_but_keeps_the_order():
    a1 = job("alice", 1, seconds=None)
    b1, b2 = job("bob", 2, 50), job("bob", 3, 50)
    places = forecast(SlotState(running=[a1], waiting=[b1, b2]), slots=1, now=NOW)
    assert [places[b1.id].position, places[b2.id].position] == [1, 2]
    assert places[b1.id].expected_start_at is None and places[b2.id].expected_start_at is None
    places = forecast(SlotState(running=[job("alice", 1, 30)], waiting=[b1, b2]), slots=1, now=NOW)
    assert places[b1.id].expected_start_at == NOW + timedelta(seconds=30)
    assert places[b2.id].expected_start_at == NOW + timedelta(seconds=80)
