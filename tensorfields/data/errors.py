"""Errors a user can cause with their data: each names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input data. The message names the offending file and what is wrong with it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class DataNotFoundError(FileNotFoundError):
    """No data for a scene. The message lists every place looked in and how to get the data."""
