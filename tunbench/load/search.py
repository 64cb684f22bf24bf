"""The zero-loss search (RFC 2544 style): the highest offered packet rate whose loss stays
within a bound, by a bounded binary search over short trials, confirmed by a full one.

Pure: :func:`zero_loss` is handed a ``trial(rate_pps, full)`` callable (``rate_pps`` None =
as fast as the sender can) and never touches a process or a clock, so its logic is
unit-tested with a fake trial. :mod:`tunbench.load.workloads` supplies real iperf3 UDP trials.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

RESOLUTION = 0.05  # stop when the bracket is narrower than this share of its top
MAX_STEPS = 8  # short trials at most (the unlimited probe included)
CONFIRM_TRIES = 3  # full trials at most; each failure lowers the rate by one resolution step
RECHECKS = 1  # searches again when twice the rate found held (a stall misled the first)


@dataclass(frozen=True)
class Trial:
    """One trial's outcome: what was offered and what arrived, packets per second."""

    offered_pps: float
    received_pps: float
    loss_percent: float
    full: bool = False  # a full-length (confirmation) trial, not a short search step
    queue_drops: int | None = None  # of the loss: packets the forwarder's TUN queue refused


@dataclass(frozen=True)
class Step:
    """A trial as the search saw it: asked for ``rate_pps`` (None: unlimited)."""

    rate_pps: float | None
    trial: Trial
    passed: bool
    phase: str  # "probe" (unlimited), "search", "confirm"

    def to_json(self) -> dict[str, Any]:
        return {"rate_pps": self.rate_pps, "phase": self.phase, "passed": self.passed} | asdict(
            self.trial
        )


@dataclass
class SearchResult:
    """The rate found (0: none passed), whether the search never found a loss (the sender
    was the limit: ``hit_upper``), and every step in order."""

    rate_pps: float
    hit_upper: bool
    confirmed: Trial | None
    steps: list[Step] = field(default_factory=list)
    above: Trial | None = None  # the last trial at twice the rate found
    unsettled: bool = False  # ... and it still held: the rate found is too low


TrialFn = Callable[[float | None, bool], Trial]


def passes(t: Trial, max_loss: float) -> bool:
    """Loss within the bound (``max_loss`` in %, inclusive) and something arrived."""
    return t.received_pps > 0 and t.loss_percent <= max_loss


def short_of(t: Trial, rate: float, resolution: float) -> bool:
    """The sender offered less than ``rate`` by more than ``resolution`` of it: a trial
    that passed there says nothing about ``rate``, only about what was sent."""
    return t.offered_pps < rate * (1 - resolution)


def _next_confirm(steps: list[Step], failed: float, resolution: float, last: bool) -> float:
    """The rate to confirm after a full trial failed at ``failed``.

    Near the limit, short trials pass with a little loss at rates a full one does not hold
    (loss there comes in bursts), so stepping down by ``resolution`` can stay inside that
    edge for every try. The floor is the highest rate below ``failed`` whose short trial
    lost nothing at all: the next rate is halfway down to it, and the last try is the
    floor itself. Without such a floor, one resolution step down.
    """
    clean = [
        s.rate_pps
        for s in steps
        if s.phase == "search"
        and s.rate_pps is not None
        and s.rate_pps < failed
        and s.passed
        and s.trial.loss_percent == 0
    ]
    if not clean:
        return failed * (1 - resolution)
    floor = max(clean)
    if last or failed - floor <= resolution * failed:
        return floor
    return (floor + failed) / 2


def zero_loss(
    trial: TrialFn,
    max_loss: float,
    resolution: float = RESOLUTION,
    max_steps: int = MAX_STEPS,
    confirm_tries: int = CONFIRM_TRIES,
    rechecks: int = RECHECKS,
) -> SearchResult:
    """Search the highest rate with loss <= ``max_loss`` %.

    1. Probe unlimited: if that passes, the sender is the limit; its rate is the answer.
    2. Else bisect ``[0, offered of the probe]``, the first midpoint being just below what
       arrived in the probe (where the answer usually is), until the bracket is narrower
       than ``resolution`` of its top or ``max_steps`` trials ran. A paced trial that
       passed but was offered less than asked (:func:`short_of`) ends the search there:
       the paced sender is the limit (``hit_upper``) and what it sent is the answer.
    3. Confirm the best passing rate with a full trial; if it fails, confirm lower
       (:func:`_next_confirm`), at most ``confirm_tries`` full trials.
    4. Try twice the confirmed rate (a short trial, phase "above"). It should lose: if
       it does not, a stall of the machine made the probe or a trial lose at a rate the
       forwarder holds, and the answer is too low. Then bisect again between twice the
       rate and the probe's offered rate and confirm there, at most ``rechecks`` times
       (a recheck that confirms nothing keeps the earlier answer); ``above`` is the last
       such trial (``unsettled`` when it still passed).
    """
    steps: list[Step] = []

    def run(rate: float | None, phase: str) -> Trial:
        t = trial(rate, phase == "confirm")
        steps.append(Step(rate, t, passes(t, max_loss), phase))
        return t

    probe = run(None, "probe")
    hit_upper = passes(probe, max_loss)
    lo, hi = (probe.offered_pps, probe.offered_pps) if hit_upper else (0.0, probe.offered_pps)
    mid = min(hi, probe.received_pps) * (1 - resolution / 2)
    rate, confirmed, above = 0.0, None, None
    for attempt in range(rechecks + 1):
        if not hit_upper:
            lo, hi, hit_upper = _bisect(run, lo, hi, mid, max_loss, resolution, max_steps)
        got, held = _confirm(run, steps, lo, max_loss, resolution, confirm_tries)
        hit_upper = hit_upper and held is not None and got == lo  # none failed
        if held is None:  # a recheck that confirms nothing leaves the earlier answer
            break
        rate, confirmed = got, held
        if hit_upper:
            break
        above = run(2 * rate, "above")
        if not passes(above, max_loss) or attempt == rechecks:
            break
        lo, hi = 2 * rate, max(hi, probe.offered_pps)  # the answer was too low: above it
        if hi - lo <= resolution * hi:
            lo, hit_upper = above.offered_pps, True
        mid = (lo + hi) / 2
    unsettled = above is not None and passes(above, max_loss)
    return SearchResult(rate, hit_upper, confirmed, steps, above, unsettled)


def _bisect(
    run: Callable[[float | None, str], Trial],
    lo: float,
    hi: float,
    mid: float,
    max_loss: float,
    resolution: float,
    max_steps: int,
) -> tuple[float, float, bool]:
    """Step 2 of :func:`zero_loss` from ``mid``, at most ``max_steps - 1`` trials:
    the bracket it leaves, and whether the paced sender turned out to be the limit."""
    for _ in range(max_steps - 1):
        if hi - lo <= resolution * hi or mid <= 0:
            break
        t = run(mid, "search")
        if short_of(t, mid, resolution):  # the paced sender, not the path, is the limit
            hi = min(hi, mid)
            if passes(t, max_loss):
                return t.offered_pps, hi, True
        if passes(t, max_loss):
            lo = mid
        else:
            hi = mid
        mid = (lo + hi) / 2
    return lo, hi, False


def _confirm(
    run: Callable[[float | None, str], Trial],
    steps: list[Step],
    rate: float,
    max_loss: float,
    resolution: float,
    tries: int,
) -> tuple[float, Trial | None]:
    """Step 3 of :func:`zero_loss`: the rate a full trial held (0.0 and None: none did)."""
    for attempt in range(tries):
        if rate <= 0:
            break
        t = run(rate, "confirm")
        if passes(t, max_loss):
            return rate, t
        rate = _next_confirm(steps, rate, resolution, last=attempt == tries - 2)
    return 0.0, None
