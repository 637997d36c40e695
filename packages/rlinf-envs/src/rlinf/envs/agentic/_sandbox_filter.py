"""The sandboxed child's kernel filters (seccomp, Landlock), shipped to the child as source.

Python raises no audit event for ``os.mknod`` or ``os.mkfifo``, so the audit hook cannot see
them: without namespaces a root child could create a character device in its directory and
open it (raw device access), or a FIFO anywhere it can write. The kernel refuses them instead:
a classic-BPF seccomp filter (``Documentation/userspace-api/seccomp_filter.rst``) makes
``mknod`` and ``mknodat`` fail with ``EPERM``, in both modes, for the child and everything it
could start. The filter also answers ``EPERM`` to any system call made through another ABI
than the interpreter's own (x32 numbers, or 32-bit ``int 0x80`` calls on x86-64), whose
numbers it does not check.

Where the kernel has Landlock, :func:`_restrict_writes` also confines every file-system
change to the sandbox directory, in both modes: without namespaces that turns the audit
hook's write rules into a kernel-enforced boundary.

Both functions run only in the child (see :mod:`._sandbox_child`); the parent only reads
their source.
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


def _restrict_writes(box: str) -> bool:  # pragma: no cover - runs only inside the child
    """Confine file-system changes to ``box`` with Landlock (Linux >= 5.19, ABI >= 2), the
    kernel's own check of every write, so no path trick the audit hook might miss (a race,
    a symbolic link, a descriptor) writes outside. Best effort like the namespaces: False,
    and nothing changed, where the kernel lacks it (ABI 1 cannot allow renames between
    folders, so it is not used). Reads stay allowed everywhere; inside ``box`` everything
    but device nodes and FIFOs may be made.

    Self-contained (shipped as source); call after :func:`_install_syscall_filter` (which
    set ``no_new_privs``, required here) and after every mount.
    """
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    create_ruleset, add_rule, restrict_self = 444, 445, 446  # the same on every machine
    abi = libc.syscall(ctypes.c_long(create_ruleset), None, ctypes.c_long(0), ctypes.c_long(1))
    if abi < 2:
        return False
    # LANDLOCK_ACCESS_FS_* rights that change the file system (uapi/linux/landlock.h).
    write_file, remove_dir, remove_file, make_char = 1 << 1, 1 << 4, 1 << 5, 1 << 6
    make_dir, make_reg, make_sock, make_fifo = 1 << 7, 1 << 8, 1 << 9, 1 << 10
    make_block, make_sym, refer, truncate = 1 << 11, 1 << 12, 1 << 13, 1 << 14
    handled = write_file | remove_dir | remove_file | make_char | make_dir | make_reg
    handled |= make_sock | make_fifo | make_block | make_sym | refer
    handled |= truncate if abi >= 3 else 0
    allowed = handled & ~(make_char | make_block | make_fifo)

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("handled_access_fs", ctypes.c_uint64)]

    class PathBeneathAttr(ctypes.Structure):
        _pack_ = 1  # the kernel's struct is packed
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(handled)
    size = ctypes.c_long(ctypes.sizeof(attr))
    ruleset = libc.syscall(
        ctypes.c_long(create_ruleset), ctypes.byref(attr), size, ctypes.c_long(0)
    )
    if ruleset < 0:
        return False
    try:
        box_fd = os.open(box, os.O_PATH | os.O_CLOEXEC)
        try:
            rule = PathBeneathAttr(allowed, box_fd)
            args = (ctypes.c_long(ruleset), ctypes.c_long(1), ctypes.byref(rule), ctypes.c_long(0))
            if libc.syscall(ctypes.c_long(add_rule), *args) != 0:  # 1: PATH_BENEATH
                return False
        finally:
            os.close(box_fd)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS (already set: harmless)
            return False
        return (
            libc.syscall(ctypes.c_long(restrict_self), ctypes.c_long(ruleset), ctypes.c_long(0))
            == 0
        )
    finally:
        os.close(ruleset)
