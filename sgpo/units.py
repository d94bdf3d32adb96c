"""Numbers for people: FLOPs, fractions, seconds and counts, at most four significant digits.

    flops(6.278e12) -> '6.28 TFLOP'    percent(0.3812) -> '38.1%'    seconds(95.2) -> '1 min 35 s'

The CLI and the dashboard both print through these, so a quantity reads the same everywhere.
"""

from __future__ import annotations

import math

FLOP_UNITS = (("EFLOP", 1e18), ("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3))


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _three(x: float) -> str:
    """Three significant digits, trailing zeros kept: 1.00, 74.3, 628."""
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 100 else f"{x:.0f}"


def flops(x) -> str:
    """'74.3 TFLOP', '1.00 GFLOP' (three significant digits); 'n/a' for None or NaN."""
    if _missing(x):
        return "n/a"
    for unit, scale in FLOP_UNITS:
        if abs(x) >= scale:
            return f"{_three(x / scale)} {unit}"
    return f"{x:.0f} FLOP"


def percent(x, digits: int = 1) -> str:
    """'38.1%' for 0.381; 'n/a' for None or NaN."""
    return "n/a" if _missing(x) else f"{x:.{digits}%}"


def seconds(x) -> str:
    """'0.42 s', '35.2 s', '4 min 05 s', '2 h 03 min'."""
    if _missing(x):
        return "n/a"
    if x < 10:
        return f"{x:.2g} s" if x < 1 else f"{x:.1f} s"
    if x < 60:
        return f"{x:.0f} s"
    if x < 3600:
        return f"{int(x // 60)} min {int(x % 60):02d} s"
    return f"{int(x // 3600)} h {int(x % 3600 // 60):02d} min"


def count(x) -> str:
    """Whole numbers with thousands separators ('12,345'); beyond a million, '3.42 M'."""
    if _missing(x):
        return "n/a"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.3g} M"
    return f"{x:,.0f}"


def number(x, digits: int = 4) -> str:
    """Any other quantity at `digits` significant digits ('0.4912', '1.25e+05')."""
    return "n/a" if _missing(x) else f"{x:.{digits}g}"


def factor(x) -> str:
    """A ratio such as a compute reduction: '2.53x'."""
    return "n/a" if _missing(x) else f"{x:.2f}x"
