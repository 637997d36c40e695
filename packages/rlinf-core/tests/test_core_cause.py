"""The CLI's last line names the root cause; signals stop a run once (no Ray here)."""

from __future__ import annotations

import argparse
import io
import os
import signal

import pytest

from rlinf.core import WorkerDied, WorkerError, run_cli
from rlinf.core._cause import (
    clear_failures,
    describe,
    exception_chain,
    failures_seen,
    record_failure,
    report_failure,
    root_cause,
)
from rlinf.core._signals import Interrupted, InterruptGuard, keep_signal_handlers


def _remote(kind: str, message: str, group: str = "rollout") -> WorkerError:
    return WorkerError(group, 0, "serve", kind, message, f"Traceback ...\n{kind}: {message}\n")


def _raised_while_handling(first: BaseException, second: BaseException) -> BaseException:
    try:
        try:
            raise first
        except BaseException:
            raise second  # noqa: B904 - the implicit context is what is tested
    except BaseException as e:
        return e


def test_a_death_beats_the_follow_up_error_raised_while_handling_it():
    died = WorkerDied("env", 0, "rollout", "The actor died unexpectedly")
    follow = _raised_while_handling(died, _remote("ConnectionError", "env closed its connection"))
    assert exception_chain(follow) == [died, follow]
    assert root_cause(follow) is died
    assert describe(died) == (
        "WorkerDied: worker group 'env' rank 0 died during rollout(): The actor died unexpectedly"
    )


def test_a_channel_death_inside_a_worker_is_a_named_death():
    def channel_died() -> WorkerError:
        return _remote(
            "ChannelDied",
            "The actor hosting channel 'math-rollout' is dead: The actor died unexpectedly.\n"
            "\tThe actor is dead because its worker process has died.",
        )

    def generic() -> WorkerError:
        return _remote("ActorDiedError", "The actor is dead because its worker process has died.")

    # Whichever came first, the named death wins over Ray's generic dead-actor error.
    named = channel_died()
    assert root_cause(_raised_while_handling(generic(), named)) is named
    named = channel_died()
    assert root_cause(_raised_while_handling(named, generic())) is named
    # Without a named death, Ray's dead-actor error beats a plain one.
    unnamed = generic()
    assert root_cause(_raised_while_handling(unnamed, ValueError("bad batch"))) is unnamed
    # One line, although the message (and the remote traceback after it) spans several.
    assert describe(channel_died()) == (
        "WorkerError: worker group 'rollout' rank 0 failed in serve(): ChannelDied: The actor "
        "hosting channel 'math-rollout' is dead: The actor died unexpectedly."
    )


def test_without_a_death_the_first_error_is_the_cause_unless_reworded():
    first = KeyError("obs")
    follow = _raised_while_handling(first, RuntimeError("cleanup failed"))
    assert root_cause(follow) is first
    # ``raise ... from``: a deliberate rewording of the cause is reported as it is.
    try:
        raise ValueError("env kind 'x' is unknown") from KeyError("x")
    except ValueError as e:
        reworded = e
    assert root_cause(reworded) is reworded
    # A cycle in the chain does not hang.
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__context__, b.__context__ = b, a
    assert root_cause(a) in (a, b)


def test_failures_seen_name_a_death_the_chain_lacks():
    clear_failures()
    died = WorkerDied("env", 1, None, "found dead at shutdown")
    record_failure(died)
    assert failures_seen() == [died]
    follow = _remote("ConnectionError", "env closed its connection")
    assert root_cause(follow, failures_seen()) is died
    assert str(died) == "worker group 'env' rank 1 died: found dead at shutdown"
    clear_failures()
    assert failures_seen() == []


def test_report_failure_prints_the_traceback_then_the_cause_last():
    died = WorkerDied("env", 0, "rollout", "The actor died unexpectedly")
    follow = _raised_while_handling(died, _remote("ConnectionError", "closed\nsecond line"))
    out = io.StringIO()
    assert report_failure("app", follow, stream=out) == 1
    lines = out.getvalue().splitlines()
    assert "ConnectionError: closed" in out.getvalue()
    assert lines[-1] == (
        "app: error: WorkerDied: worker group 'env' rank 0 died during rollout(): "
        "The actor died unexpectedly"
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demo")
    p.add_argument("what")
    return p


def test_run_cli_ends_on_the_cause_and_survives_a_second_interrupt(capsys):
    def fail(args: argparse.Namespace) -> None:
        # As a GroupFuture does: the death is recorded where it is seen; here the flow
        # then drops it (``from None``) and fails on the peer's follow-up error.
        try:
            died = WorkerDied("env", 0, "rollout", "killed")
            record_failure(died)
            raise died
        except WorkerDied:
            raise _remote("ConnectionError", "env closed its connection") from None

    assert run_cli("unused", _parser(), fail, ["x"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert "ConnectionError: env closed its connection" in "\n".join(err[:-1])
    assert (
        err[-1]
        == "demo: error: WorkerDied: worker group 'env' rank 0 died during rollout(): killed"
    )

    # Failures recorded before a run are not blamed for its errors.
    record_failure(WorkerDied("env", 0, "rollout", "killed"))

    def plain(args: argparse.Namespace) -> None:
        raise ValueError("no rows")

    assert run_cli("unused", _parser(), plain, ["x"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "demo: error: ValueError: no rows"

    shutdown_steps = []

    def interrupted(args: argparse.Namespace) -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            pytest.fail("the first signal did not interrupt")
        finally:
            # The shutdown: two more signals arrive and do not cut it short.
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            shutdown_steps.append("done")

    before = signal.getsignal(signal.SIGINT)
    assert run_cli("unused", _parser(), interrupted, ["x"]) == 130
    assert shutdown_steps == ["done"]
    assert signal.getsignal(signal.SIGINT) is before
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("demo: SIGINT received: stopping the run")
    assert err[1] == "demo: SIGINT received again: still shutting down, please wait"
    assert err[2] == "demo: SIGTERM received again: still shutting down, please wait"
    assert err[-1] == (
        "demo: stopped by SIGINT; the run and its processes have ended; 2 later signal(s) ignored"
    )


def test_sigterm_gives_143_and_ray_style_handlers_are_replaced_back():
    out = io.StringIO()
    with InterruptGuard("demo", stream=out) as guard:
        mine = signal.getsignal(signal.SIGTERM)
        with keep_signal_handlers():
            signal.signal(signal.SIGTERM, lambda s, f: None)  # what ray.init() does
        assert signal.getsignal(signal.SIGTERM) == mine
        with pytest.raises(Interrupted) as info:
            os.kill(os.getpid(), signal.SIGTERM)
        assert info.value.signum == signal.SIGTERM
        assert isinstance(info.value, KeyboardInterrupt)
        assert guard.report() == 143
    assert out.getvalue().splitlines()[-1] == (
        "demo: stopped by SIGTERM; the run and its processes have ended"
    )
