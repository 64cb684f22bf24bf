"""argparse value types shared by the CLI and the forwarders: one message per mistake."""

from __future__ import annotations

import argparse

MTU_MIN, MTU_MAX = 576, 65535


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def nonneg_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def mtu(text: str) -> int:
    value = _int(text)
    if not MTU_MIN <= value <= MTU_MAX:
        raise argparse.ArgumentTypeError(f"MTU must be within {MTU_MIN}..{MTU_MAX}, got {value}")
    return value
