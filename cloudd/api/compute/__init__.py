"""The OpenStack Compute API v2.1 (Nova-compatible REST), mounted at /compute."""
