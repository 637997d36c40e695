"""The sandboxed child's audit hook (PEP 578), shipped to the child as source text.

What a normal program does inside its own directory is allowed: create, write, rename and
remove files and folders, ``chmod``, symbolic links, ``shutil.rmtree`` and ``tempfile`` (whose
``TMPDIR`` is that directory). What could reach outside it is denied, and the rules are
chosen so that they keep holding while the code changes its own directory:

* writes and file-system changes must resolve (symbolic links followed) inside the directory;
* a symbolic link may only point inside: its target is an absolute path inside the directory
  or a relative path without ``..`` (so it stays inside wherever the link is moved), hence no
  link in the directory can lead out of it, whatever is renamed later;
* a directory outside cannot be opened as a descriptor, and ``os.open`` of a relative path
  with ``..`` is denied (its audit event does not say whether a ``dir_fd`` was given), so
  every directory descriptor the code holds lies inside;
* a call with a real ``dir_fd`` (``shutil.rmtree`` makes them) must name a plain entry of a
  directory that the kernel confirms lies inside (its chain of parents reaches the
  directory); ``None``, ``-1`` (Python 3.11) and ``AT_FDCWD`` mean "no ``dir_fd``";
* ``chmod`` / ``chown`` / ``utime`` / extended attributes on a descriptor need the
  descriptor's path (``/proc/self/fd``) to lie inside; where it cannot be read they are denied;
* sockets (unless allowed), fork / exec / spawn, ``ctypes``, hard links, signals to other
  processes, raising limits and reads under ``/proc`` other than the process's own entries.

``mknod`` and ``mkfifo`` raise no audit event: the seccomp filter (:mod:`._sandbox_filter`)
denies them. An audit hook is no security boundary on its own (a thread can race a check
against a change of the path it checked); the namespaces and Landlock are the kernel's
boundaries where available.
"""

from __future__ import annotations

__all__: list[str] = []


def _install_audit_hook(box: str, allow_network: bool) -> None:  # pragma: no cover - child only
    """Install the hook for the sandbox directory ``box`` (a real path). Self-contained."""
    import os
    import posix
    import stat
    import sys

    lstat, readlink, getcwd, stat_path, fspath = (
        posix.lstat,
        posix.readlink,
        posix.getcwd,
        posix.stat,
        posix.fspath,
    )
    box_stat = stat_path(box)
    box_id = (box_stat.st_dev, box_stat.st_ino)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    own_proc = ("/proc/self", "/proc/thread-self", f"/proc/{os.getpid()}")
    no_dir_fd = (None, -1, -100)  # -100: AT_FDCWD
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
    denied_prefixes = ("ctypes.", "_winapi.", "winreg.") + (() if allow_network else ("socket.",))
    blocked_modules = frozenset({"ctypes", "_ctypes", "_posixsubprocess"})
    # event -> ((index of a path argument, index of its dir_fd argument or None), ...)
    path_events = {
        "os.remove": ((0, 1),),
        "os.rmdir": ((0, 1),),
        "os.mkdir": ((0, 2),),
        "os.rename": ((0, 2), (1, 3)),
        "os.chmod": ((0, 2),),
        "os.chown": ((0, 3),),
        "os.symlink": ((1, 2),),
        "os.truncate": ((0, None),),
        "os.utime": ((0, 3),),
        "os.setxattr": ((0, None),),
        "os.removexattr": ((0, None),),
        "os.chflags": ((0, None),),
        "os.lchflags": ((0, None),),
        "shutil.rmtree": ((0, 1),),
    }

    def text(path: object) -> str:
        path = fspath(path)
        return path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path

    def parts_of(path: str) -> list[str]:
        return [p for p in path.split("/") if p not in ("", ".")]

    def resolve(path: object) -> str:
        """Absolute path with symbolic links resolved (own copy of realpath built on posix
        functions, so monkey-patching os cannot steer it)."""
        path = text(path)
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        parts, out, hops = parts_of(path), [], 0
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
                parts = parts_of(target) + parts
            else:
                out.append(part)
        return "/" + "/".join(out)

    def inside(path: str, root: str) -> bool:
        return path == root or path.startswith(root.rstrip("/") + "/")

    def deny(what: str) -> None:
        raise PermissionError(f"sandbox: {what} is not allowed")

    def dir_fd_inside(fd: int) -> bool:
        """Whether directory descriptor ``fd`` lies inside ``box``: walk its parents with
        ``stat("../..", dir_fd=fd)`` (the kernel's view, /proc not needed)."""
        rel = "."
        try:
            here = stat_path(rel, dir_fd=fd)
            for _ in range(4096):
                if (here.st_dev, here.st_ino) == box_id:
                    return True
                rel = ".." if rel == "." else rel + "/.."
                parent = stat_path(rel, dir_fd=fd)
                if (parent.st_dev, parent.st_ino) == (here.st_dev, here.st_ino):
                    return False  # reached the root
                here = parent
        except (OSError, ValueError):
            pass
        return False

    def fd_path(fd: int) -> str | None:
        try:
            path = readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None  # /proc hidden (namespaces) or not a descriptor
        return path if path.startswith("/") else None

    def check_path(event: str, path: object, dir_fd: object) -> None:
        if isinstance(path, int):  # a descriptor: chmod / chown / utime / truncate on it
            if event == "os.truncate":
                return  # needs a descriptor open for writing: the open check covered it
            where = fd_path(path)
            if where is None or not inside(resolve(where), box):
                deny(f"{event} on a descriptor outside the working directory")
            return
        if dir_fd not in no_dir_fd and not text(path).startswith("/"):
            name = text(path)
            if "/" in name or name in ("", ".", ".."):
                deny(f"{event} with dir_fd on {path!r} (only a plain name)")
            if not isinstance(dir_fd, int) or not dir_fd_inside(dir_fd):
                deny(f"{event} with dir_fd outside the working directory")
            return
        if not inside(resolve(path), box):
            deny(f"{event} on {path!r} outside the working directory")

    def check_link_target(target: object) -> None:
        target = text(target)
        if ".." in target.split("/"):
            deny(f"a symbolic link to {target!r} (a target with '..')")
        if target.startswith("/") and not inside(resolve(target), box):
            deny(f"a symbolic link to {target!r} outside the working directory")

    def check_open(path: object, mode: object, flags: int) -> None:
        if path is None or isinstance(path, int):
            return  # an already open descriptor
        if mode is None and not text(path).startswith("/") and ".." in text(path).split("/"):
            deny(f"os.open of {path!r} (a relative path with '..')")
        real = resolve(path)
        if flags & write_flags:
            if not inside(real, box):
                deny(f"writing {path!r} outside the working directory")
        elif inside(real, "/proc") and not any(inside(real, p) for p in own_proc):
            deny(f"reading {path!r}")
        elif mode is None and not inside(real, box):
            try:
                is_dir = stat.S_ISDIR(stat_path(real).st_mode)
            except OSError:
                is_dir = False
            if is_dir:
                deny(f"opening directory {path!r}")

    def hook(event: str, args: tuple) -> None:
        if event in denied or event.startswith(denied_prefixes):
            deny(event)
        elif event == "import":
            if str(args[0]).split(".")[0] in blocked_modules:
                deny(f"importing {args[0]}")
        elif event == "open":
            check_open(*args[:3])
        elif event in path_events:
            if event == "os.symlink":
                check_link_target(args[0])
            for path_index, fd_index in path_events[event]:
                has_fd = fd_index is not None and fd_index < len(args)
                check_path(event, args[path_index], args[fd_index] if has_fd else None)

    sys.addaudithook(hook)
