"""Fixtures for syscap top tests."""

from __future__ import annotations

import pytest

from tests.tui.synthetic import SyntheticSource


@pytest.fixture
def source() -> SyntheticSource:
    """40 synthetic processes; each snapshot() advances one deterministic interval."""
    return SyntheticSource(n=40)
