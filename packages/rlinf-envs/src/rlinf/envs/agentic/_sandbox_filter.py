"""The sandboxed child's system-call filter (seccomp), shipped to the child as source text.

Python raises no audit event for ``os.mknod`` or ``os.mkfifo``, so the audit hook cannot see
them: without namespaces a root child could create a character device in its directory and
open it (raw device access), or a FIFO anywhere it can write. The kernel refuses them instead:
a classic-BPF seccomp filter (``Documentation/userspace-api/seccomp_filter.rst``) makes
``mknod`` and ``mknodat`` fail with ``EPERM``, in both modes, for the child and everything it
could start. The filter also answers ``EPERM`` to any system call made through another ABI
than the interpreter's own (x32 numbers, or 32-bit ``int 0x80`` calls on x86-64), whose
numbers it does not check.

:func:`_install_syscall_filter` runs only in the child (see :mod:`._sandbox_child`); the parent
only reads its source.
"""

from __future__ import annotations

__all__: list[str] = []


def _install_syscall_filter() -> None:  # pragma: no cover - runs only inside the sandboxed child
    """Install the filter on the calling (single) thread; it is inherited by threads and
    processes created afterwards and can never be removed.

    Self-contained (shipped as source). Raises ``OSError`` naming the step when the kernel
    or the machine does not allow it; the prelude then refuses to run the code.
    """
    import ctypes
    import os
    import platform

    # AUDIT_ARCH_* value and the numbers of the file-node system calls, per machine.
    arches = {
        "x86_64": (0xC000003E, (133, 259)),  # mknod, mknodat
        "aarch64": (0xC00000B7, (33,)),  # mknodat (no mknod on arm64)
    }
    machine = platform.machine()
    if machine not in arches:
        raise OSError(f"no seccomp filter is defined for machine {machine!r}")
    arch, numbers = arches[machine]
    ld_w_abs, jeq_k, jge_k, ret_k = 0x20, 0x15, 0x35, 0x06
    allow, eperm = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM

    class SockFilter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_uint16),
            ("jt", ctypes.c_uint8),
            ("jf", ctypes.c_uint8),
            ("k", ctypes.c_uint32),
        ]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    # Jump offsets count instructions after the current one; the last two are the returns.
    program = [(ld_w_abs, 0, 0, 4)]  # A = seccomp_data.arch
    checks = [(jge_k, 0x40000000)] if machine == "x86_64" else []  # x32 system calls
    checks += [(jeq_k, number) for number in numbers]
    deny_at = 4 + len(checks)  # index of the EPERM return (after the ALLOW one)
    program.append((jeq_k, 0, deny_at - 2, arch))  # foreign ABI: deny
    program.append((ld_w_abs, 0, 0, 0))  # A = seccomp_data.nr
    for code, k in checks:
        program.append((code, deny_at - len(program) - 1, 0, k))
    program += [(ret_k, 0, 0, allow), (ret_k, 0, 0, eperm)]
    assert len(program) == deny_at + 1
    filters = (SockFilter * len(program))(*[SockFilter(*op) for op in program])
    prog = SockFprog(len(program), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    # no_new_privs: required to install a filter without CAP_SYS_ADMIN, and setuid
    # binaries can no longer gain privileges.
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl(NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
    if libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(prog), 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(SECCOMP_MODE_FILTER): {os.strerror(errno)}")
