"""Run probes on a Ray cluster: one Ray task per probe, results yielded as they finish (``lrpredict[ray]``).

Resource model: a probe asks for ``num_gpus`` GPUs (default 1 when the cluster has GPUs, else 0) and ``num_cpus``
CPUs; Ray places it.  Fault tolerance is Ray's own: a task whose worker process dies is retried up to
``max_retries`` times (system failures only; a Python exception inside the probe is already turned into a
"failed" result by ``run_probe``, so it is not retried).  The driver writes the ledger, so a killed driver resumes
from it like the local executor (``run_probes`` skips finished probes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from lrpredict.calibrate.executor import failed_result
from lrpredict.calibrate.ledger import WORKER_DIED
from lrpredict.calibrate.spec import ProbeResult, ProbeSpec


def _ray_run_probe(spec_json: dict[str, Any], device: str, threads: int) -> dict[str, Any]:
    import torch

    from lrpredict.calibrate.executor import run_probe

    torch.set_num_threads(threads)
    spec = ProbeSpec.model_validate(spec_json).model_copy(update={"device": device})
    return run_probe(spec).model_dump(mode="json")


class RayExecutor:
    """Executor over a Ray cluster: ``address`` of a running cluster ("auto", "ray://host:10001"), or None to use
    the one already initialised in this process (or start a local one)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: float = 1,
        num_gpus: float | None = None,
        max_retries: int = 3,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries
        self.init_kwargs = init_kwargs or {}

    def submit(self, specs: Iterable[ProbeSpec]) -> Iterator[ProbeResult]:
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_kwargs)
        gpus = self.num_gpus if self.num_gpus is not None else (1 if ray.cluster_resources().get("GPU", 0) else 0)
        remote = ray.remote(num_cpus=self.num_cpus, num_gpus=gpus, max_retries=self.max_retries)(_ray_run_probe)
        threads = max(1, int(self.num_cpus))
        pending = {
            remote.remote(spec.model_dump(mode="json"), "cuda" if gpus else "cpu", threads): spec for spec in specs
        }
        try:
            yield from _collect(ray, pending)
        finally:  # Ctrl-C or the caller stopped listening: do not leave probes running on the cluster
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)


def _collect(ray: Any, pending: dict[Any, ProbeSpec]) -> Iterator[ProbeResult]:
    """Yield each task's result as it finishes, removing it from ``pending``."""
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            spec = pending.pop(ref)
            try:
                yield ProbeResult.model_validate(ray.get(ref))
            except ray.exceptions.RayError as exc:  # retries exhausted, or the task could not run: not the probe's
                reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                yield failed_result(spec, f"{WORKER_DIED} (ray: {reason})")
