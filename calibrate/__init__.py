"""Calibration: refit the laws on your own hardware and data with short training probes (needs the `calibrate` extra).

Modules, imported one by one (this package imports nothing, so ``import lrpredict`` never loads torch):
``spec`` (ProbeSpec, ProbeResult; no torch), ``data`` (token sources), ``model`` (the probe decoder), ``schedule``
(WSD), ``train`` (``train_probe``), ``ledger`` (JSONL results), ``executor`` (``LocalExecutor``, ``run_probes``),
``ray_executor`` (``RayExecutor``), ``planner`` (plans and budgets), ``fit`` (Eq.2, Eq.4, Eq.6), ``replay``
(recorded sweeps as probes), ``lawfile`` (the fit as a law file), ``report`` (Markdown and figures), ``run`` (end to
end, resumable).
"""
