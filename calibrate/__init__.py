"""Calibration: refit the laws on your own hardware and data with short training probes (needs the `calibrate` extra).

Modules, imported one by one (this package imports nothing, so ``import lrpredict`` never loads torch):
``spec`` (ProbeSpec, ProbeResult; no torch), ``data`` (token sources), ``model`` (the probe decoder), ``schedule``
(WSD), ``train`` (``train_probe``), ``ledger`` (JSONL results), ``executor`` (``LocalExecutor``, ``run_probes``).
"""
