"""Data-parallel scaling: seconds at D devices from a few measured points."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ._profile import ProfileError

__all__ = ["ScalingFit", "fit_scaling"]


@dataclass(frozen=True)
class ScalingFit:
    """Amdahl's law fitted to measurements: ``t(D) = max(serial + parallel / D, floor)``.

    Attributes:
        serial: Seconds that do not shrink with more devices (>= 0).
        parallel: Seconds of work that splits evenly over the devices (>= 0).
        floor: Seconds never predicted below, however many devices.
    """

    serial: float
    parallel: float
    floor: float

    def seconds(self, devices: int) -> float:
        """Predicted seconds per iteration on ``devices`` devices (>= 1)."""
        if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
            raise ValueError(f"devices must be a positive int, got {devices!r}")
        return max(self.serial + self.parallel / devices, self.floor)


def fit_scaling(points: Mapping[int, float], floor: float | None = None) -> ScalingFit:
    """Fit ``t(D) = a + b / D`` (a, b >= 0) to measured ``{devices: seconds}`` points.

    Two or more points: least squares in ``x = 1/D``; if that gives a negative serial part
    (super-linear measurements), refit with ``a = 0``; if it gives a negative parallel part
    (slower with more devices), use ``b = 0`` and the mean (more devices then never help).
    One point ``(D0, t0)``: nothing tells the serial part apart, so scaling is assumed
    perfect, ``a = 0, b = t0 * D0``; give ``floor`` to stop it from shrinking forever.

    Args:
        points: Device count -> measured seconds (> 0).
        floor: Lowest prediction; None: the fitted serial part ``a``.

    Example: ``{1: 2.0, 2: 1.1}`` gives a = 0.2, b = 1.8, so t(4) = 0.65.
    """
    if not points:
        raise ProfileError("scaling needs at least one measured point")
    for d, t in points.items():
        if isinstance(d, bool) or not isinstance(d, int) or d < 1 or not t > 0:
            raise ProfileError(f"bad scaling point {d!r}: {t!r} (need devices >= 1, seconds > 0)")
    xs = [1.0 / d for d in points]
    ts = [float(t) for t in points.values()]
    n = len(xs)
    if n == 1:
        a, b = 0.0, ts[0] / xs[0]
    else:
        mx, mt = sum(xs) / n, sum(ts) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        b = sum((x - mx) * (t - mt) for x, t in zip(xs, ts, strict=True)) / sxx
        a = mt - b * mx
        if a < 0:
            # Through the origin: minimises sum (t - b x)^2.
            a, b = 0.0, sum(x * t for x, t in zip(xs, ts, strict=True)) / sum(x * x for x in xs)
        elif b < 0:
            a, b = mt, 0.0
    return ScalingFit(serial=a, parallel=b, floor=a if floor is None else float(floor))
