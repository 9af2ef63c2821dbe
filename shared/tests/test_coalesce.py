"""Coalesced background runs: one at a time, requests during a run fold into one more."""

from __future__ import annotations

import asyncio

import pytest

from musicspace_shared.coalesce import Coalescer


class Job:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0
        self.running = 0
        self.most_at_once = 0

    async def __call__(self) -> int:
        self.started += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.release.wait()
            return self.started
        finally:
            self.running -= 1


async def test_requests_during_a_run_answer_at_once_and_fold_into_one_more_run() -> None:
    job = Job()
    runs = Coalescer(job, name="test")
    first, first_outcome = runs.request()
    await asyncio.sleep(0)
    answers = [runs.request() for _ in range(10)]
    assert first == "started"
    assert [a for a, _ in answers] == ["queued"] + ["joined"] * 9
    assert runs.running and runs.pending
    job.release.set()
    assert await first_outcome == 1
    assert {await outcome for _, outcome in answers} == {2}  # all shared the second run
    await runs.idle()
    assert (job.started, job.most_at_once, runs.runs) == (2, 1, 2)
    assert not runs.running and not runs.pending


async def test_run_waits_for_a_run_that_started_after_the_call() -> None:
    job = Job()
    runs = Coalescer(job, name="test")
    runs.request()
    await asyncio.sleep(0)
    waiter = asyncio.create_task(runs.run())
    await asyncio.sleep(0)
    job.release.set()
    assert await waiter == 2  # not the run already in progress when it asked


async def test_a_failed_run_reaches_its_waiters_and_the_next_request_runs_again() -> None:
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("DB down")
        return calls

    runs = Coalescer(flaky, name="test")
    with pytest.raises(RuntimeError, match="DB down"):
        await runs.run()
    runs.request()  # nobody awaits this one: no "exception never retrieved" either way
    await runs.idle()
    assert await runs.run() == 3


async def test_a_queued_run_waits_the_minimum_gap_after_the_previous_one() -> None:
    ends: list[float] = []
    starts: list[float] = []

    async def job() -> None:
        starts.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.01)
        ends.append(asyncio.get_running_loop().time())

    runs = Coalescer(job, name="test", min_gap_s=0.2)
    runs.request()
    await asyncio.sleep(0)
    for _ in range(5):
        runs.request()
    await runs.idle()
    assert len(starts) == 2
    assert starts[1] - ends[0] >= 0.19


async def test_a_request_just_after_a_run_ended_also_waits_the_gap() -> None:
    starts: list[float] = []

    async def job() -> None:
        starts.append(asyncio.get_running_loop().time())

    runs = Coalescer(job, name="test", min_gap_s=0.2)
    await runs.run()
    await runs.run()  # nothing was running: still not before the gap
    assert starts[1] - starts[0] >= 0.19
