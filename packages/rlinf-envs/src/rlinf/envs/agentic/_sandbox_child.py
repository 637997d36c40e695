"""The sandboxed child's setup (the "prelude"), and its source text as shipped to the child.

:func:`_child_main` runs in the child's own interpreter (``python -I -c <prelude>``) before
the user code: it enters the namespaces, sets the kernel limits, installs the audit hook and
then runs the user's ``main.py`` (see :mod:`._sandbox` for the layers). It is sent as source
text, not run in a ``preexec_fn``, so starting sandboxes from many threads at once is safe.
It never runs in the parent process; the parent only reads its source (:func:`prelude_source`).
"""

from __future__ import annotations

import functools
import inspect
import textwrap

__all__ = ["prelude_source"]


@functools.cache
def prelude_source() -> str:
    """The program passed to ``python -c``: :func:`_child_main`'s source and a call to it.

    The source is read from this module's file (installed with the package, wheels
    included); a build that ships only bytecode cannot start sandboxes, and says so.
    """
    try:
        source = inspect.getsource(_child_main)
    except (OSError, TypeError) as exc:
        raise RuntimeError(
            "rlinf.envs.agentic._sandbox_child: the source of _child_main is not available "
            "(was the package installed without its .py files?); the sandbox needs it"
        ) from exc
    return textwrap.dedent(source) + "\n_child_main()\n"


def _child_main() -> None:  # pragma: no cover - runs only inside the sandboxed child
    """The prelude, run by the child interpreter before the user code.

    Sent as source text (``python -I -c``), so it is self-contained: it imports what it
    needs and uses no global of this module. ``sys.argv`` is ``[-c, box, main, limits]``.
    """
    import json
    import os
    import posix
    import resource
    import runpy
    import signal
    import stat
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

    def install_hook() -> None:
        lstat, readlink, getcwd, stat_path, fspath = (
            posix.lstat,
            posix.readlink,
            posix.getcwd,
            posix.stat,
            posix.fspath,
        )
        write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
        own_proc = ("/proc/self", "/proc/thread-self", f"/proc/{os.getpid()}")
        denied = frozenset(
            [
                "os.fork",
                "os.forkpty",
                "os.exec",
                "os.posix_spawn",
                "os.spawn",
                "os.system",
                "os.startfile",
                "subprocess.Popen",
                "pty.spawn",
                "os.kill",
                "os.killpg",
                "signal.pthread_kill",
                "os.link",
                "resource.setrlimit",
                "resource.prlimit",
                "gc.get_objects",
                "gc.get_referrers",
                "gc.get_referents",
                "webbrowser.open",
            ]
        )
        denied_prefixes = ("ctypes.", "_winapi.", "winreg.") + (
            () if limits["network"] else ("socket.",)
        )
        blocked_modules = frozenset({"ctypes", "_ctypes", "_posixsubprocess"})
        # event -> (indices of path arguments, indices of dir_fd arguments)
        path_events = {
            "os.remove": ((0,), (1,)),
            "os.rmdir": ((0,), (1,)),
            "os.mkdir": ((0,), (2,)),
            "os.rename": ((0, 1), (2, 3)),
            "os.chmod": ((0,), (2,)),
            "os.chown": ((0,), (3,)),
            "os.symlink": ((1,), (2,)),
            "os.truncate": ((0,), ()),
            "os.utime": ((0,), (3,)),
            "os.setxattr": ((0,), ()),
            "os.removexattr": ((0,), ()),
            "os.chflags": ((0,), ()),
            "os.lchflags": ((0,), ()),
            "shutil.rmtree": ((0,), ()),
        }

        def resolve(path: object) -> str:
            """Absolute path with symbolic links resolved (own copy of realpath built on
            posix functions, so monkey-patching os cannot steer it)."""
            path = fspath(path)
            if isinstance(path, bytes):
                path = path.decode("utf-8", "surrogateescape")
            if not path.startswith("/"):
                path = getcwd() + "/" + path
            parts, out, hops = [p for p in path.split("/") if p not in ("", ".")], [], 0
            while parts:
                part = parts.pop(0)
                if part == "..":
                    out = out[:-1]
                    continue
                candidate = "/" + "/".join([*out, part])
                try:
                    is_link = stat.S_ISLNK(lstat(candidate).st_mode)
                except OSError:
                    is_link = False  # does not exist (yet): keep it as written
                if is_link and hops < 40:
                    hops += 1
                    target = readlink(candidate)
                    out = [] if target.startswith("/") else out
                    parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                else:
                    out.append(part)
            return "/" + "/".join(out)

        def inside(path: str, root: str) -> bool:
            return path == root or path.startswith(root.rstrip("/") + "/")

        def deny(what: str) -> None:
            raise PermissionError(f"sandbox: {what} is not allowed")

        def hook(event: str, args: tuple) -> None:
            if event in denied or event.startswith(denied_prefixes):
                deny(event)
            elif event == "import":
                if str(args[0]).split(".")[0] in blocked_modules:
                    deny(f"importing {args[0]}")
            elif event == "open":
                path, mode, flags = args
                if path is None or isinstance(path, int):
                    return  # an already open descriptor
                real = resolve(path)
                if flags & write_flags:
                    if not inside(real, box):
                        deny(f"writing {path!r} outside the working directory")
                elif inside(real, "/proc") and not any(inside(real, p) for p in own_proc):
                    deny(f"reading {path!r}")
                elif mode is None and not inside(real, box):
                    # os.open of an outside directory: its fd as dir_fd would slip past
                    # the path checks (audit events do not carry dir_fd for open).
                    try:
                        is_dir = stat.S_ISDIR(stat_path(real).st_mode)
                    except OSError:
                        is_dir = False
                    if is_dir:
                        deny(f"opening directory {path!r}")
            elif event in path_events:
                paths, dir_fds = path_events[event]
                for i in dir_fds:
                    if i < len(args) and args[i] is not None and args[i] != -100:
                        deny(f"{event} with dir_fd")
                for i in paths:
                    if not isinstance(args[i], int) and not inside(resolve(args[i]), box):
                        deny(f"{event} on {args[i]!r} outside the working directory")

        sys.addaudithook(hook)

    namespaced = isolate()
    set_limit("RLIMIT_CPU", limits["cpu"], limits["cpu"] + 1)
    set_limit("RLIMIT_AS", limits["memory"], limits["memory"])
    set_limit("RLIMIT_FSIZE", limits["fsize"], limits["fsize"])
    set_limit("RLIMIT_NOFILE", limits["nofile"], limits["nofile"])
    set_limit("RLIMIT_CORE", 0, 0)
    if namespaced:  # only there does RLIMIT_NPROC count just the sandbox's processes
        set_limit("RLIMIT_NPROC", limits["nproc"], limits["nproc"])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write raises OSError instead
    install_hook()
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
