"""Tests that drive a real JupyterLab in headless Chromium."""

__all__: list[str] = []
