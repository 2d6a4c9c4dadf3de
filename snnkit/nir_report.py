"""What an import or export of NIR had to interpret, fold or drop: one :class:`Note` per
change, reported together in one :class:`NIRApproximationWarning`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass


class NIRApproximationWarning(UserWarning):
    """An import or export had to interpret, fold or drop something; see the message."""


@dataclass(frozen=True)
class Note:
    """One entry of an import/export report."""

    node: str  # NIR node (or snnkit population/projection) concerned
    parameter: str  # what was changed
    message: str  # how
    exact: bool  # True: the behaviour is reproduced exactly, only the representation changed

    def __str__(self) -> str:
        kind = "exact" if self.exact else "APPROXIMATED"
        return f"{self.node}.{self.parameter} ({kind}): {self.message}"


def warn(notes: list[Note], what: str, stacklevel: int) -> None:
    """One NIRApproximationWarning listing ``notes`` (none when empty), at the caller's
    ``stacklevel``."""
    if notes:
        lines = "\n".join(f"  - {n}" for n in notes)
        warnings.warn(f"{what}:\n{lines}", NIRApproximationWarning, stacklevel=stacklevel + 1)
