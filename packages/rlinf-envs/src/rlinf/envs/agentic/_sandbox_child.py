"""The sandboxed child's setup (the "prelude"), and its source text as shipped to the child.

:func:`_child_main` runs in the child's own interpreter (``python -I -c <prelude>``) before
the user code: it enters the namespaces, installs the seccomp filter and Landlock
(:mod:`._sandbox_filter`), sets the kernel limits, installs the audit hook
(:mod:`._sandbox_hook`) and then runs the user's ``main.py`` (see :mod:`._sandbox` for the
layers). It is sent as source text, not run in a ``preexec_fn``, so starting sandboxes from
many threads at once is safe. It never runs in the parent process; the parent only reads
its source (:func:`prelude_source`).
"""

from __future__ import annotations

import functools
import inspect
import textwrap

from ._sandbox_filter import _install_syscall_filter, _restrict_writes
from ._sandbox_hook import _install_audit_hook

__all__ = ["prelude_source"]


@functools.cache
def prelude_source() -> str:
    """The program passed to ``python -c``: the sources of :func:`_child_main` and of the
    functions it calls (the kernel filters, the hook), and a call to it.

    The source is read from this module's file (installed with the package, wheels
    included); a build that ships only bytecode cannot start sandboxes, and says so.
    """
    try:
        parts = [_install_syscall_filter, _restrict_writes, _install_audit_hook, _child_main]
        source = "\n\n".join(textwrap.dedent(inspect.getsource(f)) for f in parts)
    except (OSError, TypeError) as exc:
        raise RuntimeError(
            "rlinf.envs.agentic._sandbox_child: the source of _child_main is not available "
            "(was the package installed without its .py files?); the sandbox needs it"
        ) from exc
    return source + "\n_child_main()\n"


def _child_main() -> None:  # pragma: no cover - runs only inside the sandboxed child
    """The prelude, run by the child interpreter before the user code.

    Sent as source text (``python -I -c``), so it is self-contained: it imports what it
    needs and uses no global of this module but the functions shipped beside it.
    ``sys.argv`` is ``[-c, box, main, limits]``.
    """
    import json
    import os
    import resource
    import runpy
    import signal
    import sys
    import traceback

    box, main, limits = os.path.realpath(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])

    def isolate() -> bool:
        """New user + mount (+ network) namespaces; True when they were created."""
        try:
            import ctypes
        except ImportError:
            return False
        libc = ctypes.CDLL(None, use_errno=True)
        newuser, newns, newnet = 0x10000000, 0x00020000, 0x40000000
        if libc.unshare(newuser | newns | (0 if limits["network"] else newnet)) != 0:
            return False
        # Best effort from here: a refused step leaves that layer out, never fails the run.
        ms_rdonly, ms_bind, ms_rec, ms_private = 0x1, 0x1000, 0x4000, 0x40000
        path = box.encode()
        if libc.mount(None, b"/", None, ms_rec | ms_private, None) != 0:
            return True
        if libc.mount(path, path, None, ms_bind | ms_rec, None) == 0:

            class MountAttr(ctypes.Structure):
                _fields_ = [
                    (n, ctypes.c_uint64) for n in ("attr_set", "attr_clr", "prop", "userns")
                ]

            mount_setattr, at_fdcwd, at_recursive, attr_rdonly = 442, -100, 0x8000, 0x1
            for target, attr in ((b"/", MountAttr(attr_rdonly)), (path, MountAttr(0, 1))):
                size = ctypes.sizeof(attr)
                args = (at_fdcwd, target, at_recursive, ctypes.byref(attr), size)
                if libc.syscall(mount_setattr, *args) != 0:
                    break
        os.chdir(box)  # the old working directory still points below the bind mount
        # An empty /proc: no other process (the parent's environment) is visible.
        libc.mount(b"none", b"/proc", b"tmpfs", ms_rdonly, b"size=4k")
        return True

    def set_limit(name: str, soft: int, hard: int) -> None:
        which = getattr(resource, name)
        _, current = resource.getrlimit(which)
        if current != resource.RLIM_INFINITY:
            hard = min(hard, current)
        resource.setrlimit(which, (min(soft, hard), hard))

    namespaced = limits["namespaces"] and isolate()
    try:
        _install_syscall_filter()
    except Exception as exc:  # the code must not run without it: refuse, naming the cause
        sys.stderr.write(f"{limits['setup_marker']} the seccomp filter: {exc}\n")
        sys.stderr.flush()
        os._exit(limits["setup_exit"])
    _restrict_writes(box)  # best effort: where the kernel lacks Landlock, the hook remains
    set_limit("RLIMIT_CPU", limits["cpu"], limits["cpu"] + 1)
    set_limit("RLIMIT_AS", limits["memory"], limits["memory"])
    set_limit("RLIMIT_FSIZE", limits["fsize"], limits["fsize"])
    set_limit("RLIMIT_NOFILE", limits["nofile"], limits["nofile"])
    set_limit("RLIMIT_CORE", 0, 0)
    if namespaced:  # only there does RLIMIT_NPROC count just the sandbox's processes
        set_limit("RLIMIT_NPROC", limits["nproc"], limits["nproc"])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write raises OSError instead
    _install_audit_hook(box, limits["network"])
    for name in [n for n in sys.modules if n.split(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[name]  # re-importing goes through the hook, which denies it
    sys.argv = [main]
    out_of_memory = False
    try:
        runpy.run_path(main, run_name="__main__")
    except MemoryError:
        out_of_memory = True  # reported below, once the user's frames are freed
    except SystemExit:
        raise
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != main:
            tb = tb.tb_next  # hide the prelude's and runpy's frames
        report = traceback.TracebackException(type(exc), exc, tb or exc.__traceback__)
        # drop the audit hook's own frames (source "<string>"): the user sees the denial
        report.stack = traceback.StackSummary.from_list(
            [frame for frame in report.stack if frame.filename != "<string>"]
        )
        sys.stderr.write("".join(report.format()))
        raise SystemExit(1) from None
    if out_of_memory:
        sys.stderr.write("MemoryError: the sandbox memory limit was reached\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(limits["memory_exit"])
