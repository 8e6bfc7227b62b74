"""cancel_and_wait stops a loop that swallows a cancellation, and never waits forever."""

from __future__ import annotations

import asyncio
import time

from diemcau.tasks import Periodic, cancel_and_wait, run_to_end


async def test_a_loop_that_swallows_one_cancel_is_stopped() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed == 0:  # what 3.11's wait_for can do (gh-86296)
                    swallowed += 1
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await cancel_and_wait(task, timeout=2)
    assert task.cancelled() and swallowed == 1


async def test_gives_up_after_the_timeout() -> None:
    alive = True

    async def immortal() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if not alive:
                    raise

    task = asyncio.create_task(immortal())
    await asyncio.sleep(0)
    start = time.monotonic()
    await cancel_and_wait(task, timeout=0.3)
    assert 0.25 < time.monotonic() - start < 2 and not task.done()
    alive = False  # now it may die: nothing is left pending for the runner
    await cancel_and_wait(task, timeout=2)
    assert task.cancelled()


async def test_run_to_end_finishes_the_work_then_reraises_the_cancel() -> None:
    done: list[str] = []
    go = asyncio.Event()

    async def write() -> str:
        await go.wait()
        done.append("written")
        return "ok"

    async def caller() -> str:
        return await run_to_end(write())

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    task.cancel()  # a second cancel (cancel_and_wait repeats them) changes nothing
    assert not task.done()
    go.set()
    await asyncio.wait({task}, timeout=2)
    assert task.cancelled() and done == ["written"]
    assert await run_to_end(asyncio.sleep(0, "same")) == "same"  # not cancelled: the result


async def test_run_to_end_gives_up_after_the_grace() -> None:
    async def stuck() -> None:
        await asyncio.sleep(10)

    task = asyncio.create_task(run_to_end(stuck(), grace=0.2))
    await asyncio.sleep(0.01)
    started = time.monotonic()
    task.cancel()
    await asyncio.wait({task}, timeout=3)
    assert task.cancelled() and time.monotonic() - started < 1.5


async def test_a_periodic_step_finishes_when_stopped_and_the_loop_goes_on_after_a_failure() -> None:
    """A periodic loop's step is never cut by the stop (a store call half done), and a
    failing step (the store out of reach) does not end the loop: the next round runs."""
    rounds: list[str] = []
    in_step = asyncio.Event()
    release = asyncio.Event()

    async def step() -> None:
        n = len(rounds)
        rounds.append("started")
        if n == 0:
            raise ConnectionRefusedError("the store restarts")
        if n == 2:
            in_step.set()
            await release.wait()
            rounds.append("finished")

    Periodic("test-step", 0.01, step, what="test step", first=0).start()
    task = next(t for t in asyncio.all_tasks() if t.get_name() == "test-step")
    await asyncio.wait_for(in_step.wait(), 5)  # round 3, after a failed round 1
    stopping = asyncio.create_task(cancel_and_wait(task, timeout=5))
    await asyncio.sleep(0.05)
    assert not task.done()  # the cancel waits for the step
    release.set()
    await asyncio.wait_for(stopping, 5)
    assert task.cancelled() and rounds == ["started", "started", "started", "finished"]


async def test_a_periodic_loop_starts_once_and_its_stop_waits_for_the_round() -> None:
    """`Periodic` as a service holds it. Bad uses tried: `start` twice (one loop, not
    two), `stop` before any `start` and `stop` twice (nothing happens), a period of 0
    (the loop never starts, the step never runs)."""
    rounds: list[str] = []
    in_step = asyncio.Event()
    release = asyncio.Event()

    async def step() -> None:
        rounds.append("started")
        if len(rounds) == 2:
            in_step.set()
            await release.wait()
            rounds.append("finished")

    off = Periodic("test-off", 0, step, what="never", first=0)
    off.start()
    await off.stop()
    loop = Periodic("test-loop", 0.01, step, what="test step", first=0)
    await loop.stop()  # never started: nothing to stop
    loop.start()
    loop.start()  # already running: still one loop
    names = [t.get_name() for t in asyncio.all_tasks()]
    assert names.count("test-loop") == 1 and "test-off" not in names
    await asyncio.wait_for(in_step.wait(), 5)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done() and rounds == ["started", "started"]  # waits for the round
    release.set()
    await asyncio.wait_for(stopping, 5)
    assert rounds == ["started", "started", "finished"]
    await loop.stop()
    assert "test-loop" not in [t.get_name() for t in asyncio.all_tasks()]
    await asyncio.sleep(0.05)
    assert rounds == ["started", "started", "finished"]  # stopped: no further round
