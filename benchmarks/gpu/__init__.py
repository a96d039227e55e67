"""Scripts and helpers for the GPU checks on a lent machine (see run_device_checks.sh)."""
