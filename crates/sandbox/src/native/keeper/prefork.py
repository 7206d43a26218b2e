# code-runner's python zygote: a pristine interpreter a slot's keeper starts
# ahead, inside the slot's sandbox, from which each python step of the slot
# is forked (see the keeper's `prefork` module, and docs/prefork.md).
#
# No user code ever runs in this process. Per step the keeper sends, on the
# socket at descriptor 3, a JSON request and seven descriptors: a pidfd of
# the step's init (whose fresh namespaces are ready), the init's arrival
# pipe, the step's status pipe, the keeper's program pipe, and the program's
# stdin, stdout and stderr. The zygote forks a minder; the minder joins the
# init's mount, PID, IPC, UTS and network namespaces and forks the program
# into them. The program tells the init its pid there (the init ends the
# step when it ends), confines itself exactly as an exec'd program is
# confined (a session, its descriptors, its directory, the rlimits, every
# capability dropped, no_new_privs, the seccomp filter), then leaves the
# zygote's loop and runs the job's file as __main__ in this interpreter,
# copy-on-write: nothing it does reaches the zygote. The minder stays
# outside the step, out of the program's sight, as its parent: it tells the
# keeper the program's pid, and writes its wait status to the status pipe.
#
# argv: -c <this script> <seccomp filter as hex>
import ctypes
import importlib.machinery
import io
import json
import os
import socket
import struct
import sys

# The runtime the job finds already imported: what most programs import.
import bisect  # noqa: F401
import collections  # noqa: F401
import functools  # noqa: F401
import heapq  # noqa: F401
import itertools  # noqa: F401
import math  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import string  # noqa: F401

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
CAPABILITY_VERSION_3 = 0x20080522

libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
FILTER = bytes.fromhex(sys.argv[1])


def check(rc, what):
    if rc != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def serve():
    """The zygote's loop; returns only in a program, with its job."""
    control = socket.socket(fileno=3)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 7)
        except InterruptedError:
            continue
        if not message:
            os._exit(0)  # the keeper is gone
        if len(fds) != 7:
            for fd in fds:
                os.close(fd)
            continue
        child = os.fork()
        if child == 0:
            control.detach()
            return enter(json.loads(message), fds)
        for fd in fds:
            os.close(fd)
        os.waitpid(child, 0)


def enter(job, fds):
    """The minder: puts a program into the step and waits for its end."""
    init, arrival, status, program, stdin, stdout, stderr = fds
    try:
        check(
            libc.setns(
                init,
                CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET,
            ),
            "join the step's namespaces",
        )
        # The first process of the step's PID namespace after its init.
        child = os.fork()
    except BaseException as e:
        fail(stderr, "join the step", e)
    if child == 0:
        try:
            return confine(job, arrival, (stdin, stdout, stderr))
        except BaseException as e:
            fail(stderr, "confine the program", e)
    try:
        for fd in (init, arrival, stdin, stdout, stderr):
            os.close(fd)
        os.write(program, struct.pack("=i", child))
        os.close(program)
        _, wait_status = os.waitpid(child, 0)
        os.write(status, struct.pack("=i", wait_status))
    finally:
        os._exit(0)


def confine(job, arrival, stdio):
    os.setsid()
    os.write(arrival, struct.pack("=i", os.getpid()))
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    os.closerange(3, 1 << 20)
    os.chdir(job["dir"])
    import resource

    def limit(value):
        return resource.RLIM_INFINITY if value >= 1 << 63 else value

    for which, soft, hard in job["rlimits"]:
        resource.setrlimit(which, (limit(soft), limit(hard)))
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    header = struct.pack("=Ii", CAPABILITY_VERSION_3, 0)
    check(libc.capset(header, bytes(24)), "drop capabilities")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs")
    program = ctypes.create_string_buffer(FILTER, len(FILTER))
    fprog = struct.pack("=HxxxxxxQ", len(FILTER) // 8, ctypes.addressof(program))
    fprog_buffer = ctypes.create_string_buffer(fprog, len(fprog))
    check(
        libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog_buffer), 0, 0),
        "install the seccomp filter",
    )
    # The streams a fresh interpreter would have made on these descriptors
    # (the zygote's were made on /dev/null: a file, seekable).
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        old = getattr(sys, name)
        buffer = io.open(fd, "rb" if fd == 0 else "wb", buffering=-1, closefd=False)
        buffer.raw.name = f"<{name}>"
        stream = io.TextIOWrapper(
            buffer,
            old.encoding,
            old.errors,
            newline="\n",
            line_buffering=old.line_buffering,
            write_through=old.write_through,
        )
        stream.mode = "r" if fd == 0 else "w"
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    os.environ.clear()
    os.environ.update(dict(job["env"]))
    return job


def fail(stderr, what, error):
    try:
        os.write(stderr, f"code-runner: cannot {what}: {error}\n".encode())
    finally:
        os._exit(127)


def run(job):
    """Runs the job's file as `python3 FILE ARGS` would, in this __main__."""
    argv = job["argv"]
    # As python 3.9 and later name the script: absolute.
    path = os.path.abspath(argv[1])
    sys.argv = argv[1:]
    sys.orig_argv = list(argv)
    sys.path[0] = os.path.dirname(path)
    loader = importlib.machinery.SourceFileLoader("__main__", path)
    main = sys.modules["__main__"]
    scope = main.__dict__
    excepthook, exit_ = sys.excepthook, sys.exit
    try:
        with open(path, "rb") as f:
            source = f.read()
        code = compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as e:
        excepthook(type(e), e.with_traceback(None), None)
        exit_(1)
    except OSError as e:
        print(
            f"{argv[0]}: can't open file {path!r}: [Errno {e.errno}] {e.strerror}",
            file=sys.stderr,
        )
        exit_(2)
    builtins = scope["__builtins__"]
    scope.clear()
    scope.update(
        __name__="__main__",
        __doc__=None,
        __package__=None,
        __loader__=loader,
        __spec__=None,
        __annotations__={},
        __builtins__=builtins,
        __file__=path,
        __cached__=None,
    )
    try:
        exec(code, scope)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as e:
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code is not code:
            tb = tb.tb_next
        # The hook prints the traceback the exception holds.
        excepthook(type(e), e.with_traceback(tb), tb)
        exit_(1)


run(serve())
