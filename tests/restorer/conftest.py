"""Fixtures for restorer tests (defined in restore_helpers, shared with the test modules)."""

from restore_helpers import core_pattern, no_leftover_processes, programs

__all__ = ["core_pattern", "no_leftover_processes", "programs"]
