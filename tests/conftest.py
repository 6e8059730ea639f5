"""Fixtures shared by several test files."""

import os
from pathlib import Path

import pytest
import torch


@pytest.fixture
def one_thread():
    """One CPU thread: tiny networks run far slower when threads spin-wait on a busy machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (screenshots); gitignored, kept between runs."""
    folder = Path(os.environ.get("GEN_EVAL_TEST_ARTIFACTS", ARTIFACTS))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def headless_browser():
    """A headless Chromium (tests/browser.py), shared by the session; skips when none can run here.

    Skips only for a missing playwright package or browser executable; a browser that is
    present but fails to start is an error, not a skip.
    """
    from browser import Browser, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"no headless browser: {reason}")
    with Browser() as opened:
        yield opened
