"""Calibration: refit the laws on your own hardware and data with short training probes (needs the `calibrate` extra)."""
