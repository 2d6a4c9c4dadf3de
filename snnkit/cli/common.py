"""What several commands share: the usage error and the hardware-size options."""

from __future__ import annotations

import argparse

from ..errors import SnnkitError

SIZES = ("n_max", "syn_max", "p_max", "pr_max", "d_max", "tr_max")  # HardwareConfig fields


class UsageError(SnnkitError):
    """A bad combination of options: reported with the command's usage, exit status 2."""


def add_size_args(parser: argparse.ArgumentParser) -> None:
    """``--n-max N`` ... : hardware sizes, each defaulting to the smallest that fits."""
    for name in SIZES:
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=None,
                            help=f"hardware {name.upper()} (default: smallest that fits)")


def sizes(args: argparse.Namespace) -> dict[str, int]:
    """The hardware sizes given on the command line (for ``HardwareConfig.for_network``)."""
    return {k: getattr(args, k) for k in SIZES if getattr(args, k) is not None}
