"""Cost of the candidates that give the update more compute than its own devices: dynamic
lending (the chain's devices serve the update once the chain is done) and the static
"wide" placement (every process on one device with the compute of two, taking turns).

Both price the update's speed-up from a measured point, ``ComponentProfile.wide_seconds``
(CPU slots: the update on 2 intra-op threads instead of 1); nothing is assumed.
"""

from __future__ import annotations

import math

from ._cost import PlacementLayout, Prediction, Stage, evaluate
from ._profile import FlowProfile, ProfileError

__all__ = ["evaluate_lending", "lending_speedup", "predict_wide"]


def lending_speedup(profile: FlowProfile) -> float | None:
    """The update's measured speed-up with a second device's compute:
    ``seconds[1] / wide_seconds`` of the update, or None when either is not measured.
    (Below 1 when the second thread slows it down; lending candidates then lose.)"""
    upd = profile[profile.update]
    if upd.wide_seconds is None or 1 not in upd.seconds:
        return None
    return upd.seconds[1] / upd.wide_seconds


def evaluate_lending(
    profile: FlowProfile, layout: PlacementLayout, micro_batches: int, overlap_update: bool
) -> Prediction:
    """Seconds per iteration when the chain's devices are lent to the update once the
    chain ends (``scheduler.dynamic``), the update on devices of its own.

    With chain C (as in ``predict``), update U on its own devices, lending speed-up
    ``s = lending_speedup(profile)`` and sync W::

        sequential (no overlap):  T = C + U / s + W   (the update is lent throughout)
        overlap:                  T = C + (f - 1) * min(C, U) + max(0, U - C) / s + W

    The overlap form is the steady state of iteration i's update starting beside
    iteration i+1's chain: while both run they are f times slower
    (``profile.overlap_slowdown``, 1 for independent devices), so the update has done
    min(C, U) of its work when the chain ends; then it gets the chain's devices for the
    rest (lent for what outlasts C). With U <= C it never gets them, and equals static
    overlap. Example: C = 0.5, U = 1.0, s = 1.8, W = 0: sequential
    0.5 + 0.556 = 1.056 s, overlap 0.5 + 0.278 = 0.778 s (static overlap: 1.0 s).

    Raises:
        ProfileError: the update's wide point is not measured.
        ValueError: the update shares devices with chain components (nothing to lend).
    """
    s = lending_speedup(profile)
    if s is None:
        raise ProfileError(
            f"lending needs {profile.update}'s wide_seconds and its 1-device seconds measured"
        )
    if layout.update_with:
        raise ValueError(
            f"lending needs {profile.update} on devices of its own; it shares them with "
            f"{'+'.join(layout.update_with)}"
        )
    base = evaluate(profile, layout, micro_batches, False)
    if not base.feasible:
        return Prediction(
            math.inf,
            False,
            base.reason,
            base.stages,
            base.chain_s,
            base.update_s,
            base.sync_s,
            micro_batches,
            overlap_update,
        )
    chain, upd, sync = base.chain_s, base.update_s, base.sync_s
    chain_txt = base.reason.split("; ")[0]  # "<layout>: <chain>" as static candidates say it
    if overlap_update:
        rest = max(0.0, upd - chain)
        slow = (profile.overlap_slowdown - 1.0) * min(chain, upd)
        total = chain + slow + rest / s + sync
        upd_txt = (
            f"update {upd:.3g} s overlapped, lent the chain's devices for its last "
            f"{rest:.3g} s (speed-up {s:.2f} measured)"
        )
        if slow > 0:
            upd_txt += f" + {slow:.3g} s sharing the host (x{profile.overlap_slowdown:.2f})"
    else:
        total = chain + upd / s + sync
        upd_txt = f"then update {upd:.3g} s lent the chain's devices (speed-up {s:.2f} measured)"
    reason = f"{chain_txt}; {upd_txt}; sync {sync:.3g} s"
    return Prediction(
        total, True, reason, base.stages, chain, upd, sync, micro_batches, overlap_update
    )


def predict_wide(profile: FlowProfile, problem: str | None = None) -> Prediction:
    """Seconds per iteration with every component on device 0, each process using the
    compute of two devices (CPU slots: 2 intra-op threads), taking turns, one micro-batch,
    no overlap: ``T = sum over the chain of (wide_c + overhead_c) + wide_update + W``
    (as ``predict`` of everything on one device, with the wide seconds)::

        env 0.3, rollout 0.2 (overheads 0.01 each), actor wide 0.6, W 0.05 -> 1.17 s

    Args:
        problem: why the placement cannot run (memory of the collocated layout), or None.

    Raises:
        ProfileError: a component without ``wide_seconds``.
    """
    missing = [c.name for c in profile.components if c.wide_seconds is None]
    if missing:
        raise ProfileError(f"the wide candidate needs wide_seconds of {missing}")
    chain = profile.chain
    wide = {c.name: float(c.wide_seconds or 0.0) for c in profile.components}
    chain_s = sum(wide[n] + profile[n].overhead_s for n in chain)
    upd = wide[profile.update]
    sync = profile.weight_sync_s
    text = f"{'+'.join(chain)} 0 ({profile.update} with {'+'.join(chain)}), 2 devices' compute"
    stage = Stage(chain, (0,), chain_s)
    if problem is not None:
        return Prediction(
            math.inf,
            False,
            f"{text}: infeasible: {problem}",
            (stage,),
            chain_s,
            upd,
            sync,
            1,
            False,
        )
    reason = (
        f"{text}: {'+'.join(chain)} take turns {chain_s:.3g} s; then update {upd:.3g} s; "
        f"sync {sync:.3g} s"
    )
    return Prediction(chain_s + upd + sync, True, reason, (stage,), chain_s, upd, sync, 1, False)
