"""The scheduler on its own: a job that arrives while the queue is being prepared, a scheduling bug."""

from __future__ import annotations

import asyncio
from typing import Optional

from serving_stubs import GatedEngine, ScriptEngine

from codex_cli.serving.generation import GenRequest, Job, JobResult, Scheduler


class _Metrics:
    def observe_step(self, running: int) -> None: ...

    def observe_job(self, queue_wait: float, first_token: Optional[float], completion_tokens: int,
                    masked: int, *, model: str, prompt_tokens: int) -> None: ...


def _scheduler(engine: ScriptEngine) -> Scheduler:
    return Scheduler(lambda: engine, _Metrics(), max_batch_size=8, max_batch_tokens=1000, max_queue=8, seed=0)


def test_a_job_arriving_while_the_queue_is_prepared_joins_later() -> None:
    class ArrivingEngine(ScriptEngine):
        late: Optional[Job] = None

        def prepare(self, job: Job) -> int:
            if self.late is not None and self.late.footprint is None and job is not self.late:
                scheduler.submit(self.late)  # lands behind the jobs being prepared, unprepared
            return super().prepare(job)

    async def go() -> list[object]:
        loop = asyncio.get_running_loop()
        engine.late = Job(GenRequest("late", 2), loop)
        first = Job(GenRequest("first", 2), loop)
        scheduler.start()
        scheduler.submit(first)
        outcomes = [await asyncio.wait_for(job.done, 10) for job in (first, engine.late)]
        scheduler.stop()
        return outcomes

    engine = ArrivingEngine(["a", "b"])
    scheduler = _scheduler(engine)
    assert all(isinstance(o, JobResult) and o.text == "ab" for o in asyncio.run(go()))


def test_a_bug_in_a_step_fails_the_running_jobs_and_the_worker_goes_on() -> None:
    class FlakyEngine(ScriptEngine):
        def step(self) -> list[Job]:
            if not self.steps:
                self.steps.append(-1)
                raise RuntimeError("boom")
            return super().step()

    async def go() -> tuple[object, object]:
        loop = asyncio.get_running_loop()
        scheduler.start()
        doomed = Job(GenRequest("x", 2), loop)
        scheduler.submit(doomed)
        failed = await asyncio.wait_for(doomed.done, 10)
        later = Job(GenRequest("y", 2), loop)
        scheduler.submit(later)
        fine = await asyncio.wait_for(later.done, 10)
        scheduler.stop()
        return failed, fine

    scheduler = _scheduler(FlakyEngine(["a", "b"]))
    failed, fine = asyncio.run(go())
    assert getattr(failed, "status", None) == 500 and isinstance(fine, JobResult) and fine.text == "ab"


def test_a_request_waiting_for_kv_budget_is_not_overtaken() -> None:
    engine = GatedEngine(["w"] * 9)
    # footprints (1 + max_new_tokens): A 6, B 10, C 3; budget 12 holds A + C (2 x 6) but never B with anyone
    scheduler = Scheduler(lambda: engine, _Metrics(), max_batch_size=8, max_batch_tokens=12, max_queue=8, seed=0)
    finished: list[str] = []

    async def go() -> None:
        loop = asyncio.get_running_loop()
        scheduler.start()
        jobs = {name: Job(GenRequest(name, tokens), loop) for name, tokens in (("A", 5), ("B", 9), ("C", 2))}
        scheduler.submit(jobs["A"])
        await loop.run_in_executor(None, engine.entered.wait, 10)  # A runs alone; its first step waits
        scheduler.submit(jobs["B"])
        scheduler.submit(jobs["C"])
        engine.allow(100)
        for name, job in jobs.items():
            job.done.add_done_callback(lambda _, name=name: finished.append(name))
        await asyncio.wait_for(asyncio.gather(*(job.done for job in jobs.values())), 10)
        scheduler.stop()

    asyncio.run(go())
    assert finished == ["A", "B", "C"] and max(engine.steps) == 1  # C could have joined A, but B was first
