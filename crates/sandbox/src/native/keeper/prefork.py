# code-runner's python zygote: a pristine interpreter a slot's keeper starts
# ahead, inside the slot's sandbox, from which each python step of the slot
# is forked (see the keeper's `prefork` module, and docs/prefork.md).
#
# No user code ever runs in this process. Per step the keeper sends, on the
# socket at descriptor 3, a JSON request and eight descriptors: a pidfd of
# the step's init (whose fresh namespaces exist; its mounts may still be
# under way), the init's ready pipe, the init's arrival pipe, the step's
# status pipe, the keeper's program pipe, and the program's stdin, stdout
# and stderr. The zygote joins the init's PID namespace for its children
# only and forks the program into it; the program waits for the init's
# ready byte (its mounts are made), joins the init's mount, IPC, UTS and
# network namespaces, tells the init its pid
# there (the init ends the step when it ends), confines itself exactly as
# an exec'd program is confined (a session, its descriptors, its directory,
# the rlimits, every capability dropped, no_new_privs, the seccomp filter),
# then leaves the zygote's loop and runs the job's file as __main__ in this
# interpreter, copy-on-write: nothing it does reaches the zygote. The zygote
# stays outside the step, out of the program's sight, as its parent: it
# tells the keeper the program's pid and writes its wait status to the
# status pipe, then waits for the next request.
#
# argv: -c <this script> <seccomp filter as hex>
import atexit
import errno as errno_
import ctypes
import gc
import importlib.machinery
import io
import json
import os
import resource
import signal
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
libc.capset.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
# What each program passes the kernel to confine itself, made once: the
# capability sets (all empty) and the seccomp filter's sock_fprog.
CAP_HEADER = struct.pack("=Ii", CAPABILITY_VERSION_3, 0)
CAP_DATA = bytes(24)
FILTER = bytes.fromhex(sys.argv[1])
FILTER_BUFFER = ctypes.create_string_buffer(FILTER, len(FILTER))
FPROG = ctypes.create_string_buffer(
    struct.pack("=HxxxxxxQ", len(FILTER) // 8, ctypes.addressof(FILTER_BUFFER)), 16
)


def check(rc, what):
    if rc != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def harden():
    """What no program of this zygote may hold, taken from the zygote itself
    once (a fork inherits it): the capability bounding set (what an exec
    could gain back), the ambient set, and no_new_privs on. The zygote keeps
    its effective capabilities, which each program drops (`confine`) after
    joining the step's namespaces."""
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != errno_.EINVAL:
            check(-1, f"drop capability {cap} from the bounding set")
    check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs")
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    if int(status["CapBnd"], 16) != 0 or status["NoNewPrivs"].strip() != "1":
        raise OSError("the bounding set or no_new_privs did not take")


def rehearse():
    """Runs once, before any job, what each program's first run of it would
    otherwise pay for in a forked copy: the lazy set-up of the parser and the
    compiler (the AST types), of the JSON decoder, of text streams and of
    file reading, so that each fork finds them made and shared."""
    json.loads(json.dumps({"argv": ["python3", "main.py"], "env": [["A", "b"]], "rlimits": [[0, 1, 2]], "dir": "/"}))
    compile(REHEARSAL, "/rehearsal.py", "exec", dont_inherit=True)
    read, write = os.pipe()
    for fd, mode in ((read, "rb"), (write, "wb")):
        stream = io.TextIOWrapper(io.open(fd, mode, buffering=-1, closefd=False), "utf-8", "strict", newline="\n")
        stream.mode = "r" if mode == "rb" else "w"
        if mode == "wb":
            stream.write("")
            stream.flush()
    os.close(read)
    os.close(write)
    with open("/dev/null", "rb") as f:
        f.read()
    os.path.dirname(os.path.abspath("main.py"))
    importlib.machinery.SourceFileLoader("__main__", "/rehearsal.py")


# Python touching most of what the compiler knows: every statement and
# expression kind, so every AST type and parser rule is made once here.
REHEARSAL = """
import os, sys as system
from collections import deque
x: int = 1
y = [i * 2 for i in range(3) if i] + list({1: 2}.items()) + [*{3}, *(4,)]
z = {k: v for k, v in {}.items()}; w = {e for e in ()}; g = (e for e in ())
s = f"{x!r:>{y}} {b'x'!r}" + "a" "b" + r"x" + str(0x1f + 0o7 + 0b1 + 1e3 + 2j)
t = x if x else -y; u = not x and x or ~x; v = lambda a, *b, c=1, **d: a
a = b = c = 0; a += 1; a, b = b, a; del a; x @ x if 0 else None
l = y[1:2:3]; l = y[::]; (q := 5); assert q, "m"; print(end="")
@staticmethod
def f(p, /, r, *, k=None, **kw) -> "ret":
    global x
    yield x; yield from ()
    return
async def h():
    async with h() as m: await m
    async for n in h(): pass
class C(object, metaclass=type):
    attr = 1
    def m(self): nonlocal_ = super().__init__()
try:
    raise ValueError("v") from None
except (ValueError, TypeError) as e:
    pass
else:
    pass
finally:
    pass
try: pass
except* OSError: pass
with open("/dev/null") as one, open("/dev/null") as two: pass
for i in range(1): continue
else: pass
while False: break
match x:
    case 1 | 2: pass
    case [a, *rest]: pass
    case {"k": v, **kw}: pass
    case C(attr=1): pass
    case str() as s if s: pass
    case _: pass
if x is not None and x in y and x not in z and 0 < x <= 1 != 2: pass
elif x: pass
"""


def serve():
    """The zygote's loop; returns only in a program, with its job."""
    control = socket.socket(fileno=3)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 8)
        except InterruptedError:
            continue
        if not message:
            os._exit(0)  # the keeper is gone
        if len(fds) != 8:
            for fd in fds:
                os.close(fd)
            continue
        init, ready, arrival, status, program, stdin, stdout, stderr = fds
        child = -1
        try:
            # Children from now on are born in the step's PID namespace
            # (the first after its init); this process stays where it is.
            check(libc.setns(init, CLONE_NEWPID), "join the step's PID namespace")
            child = os.fork()
        except BaseException as e:
            report(stderr, "start the program", e)
        if child == 0:
            control.detach()
            try:
                job = json.loads(message)
                prepare(job, arrival, (stdin, stdout, stderr))
                # The init's mounts are made once it writes; an init that
                # failed has gone, and its end with it.
                if os.read(ready, 1) != b"\1":
                    os._exit(127)
                check(
                    libc.setns(init, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET),
                    "join the step's namespaces",
                )
                return confine(job)
            except BaseException as e:
                report(stderr, "confine the program", e)
                os._exit(127)
        # The program's parent, out of its sight: its pid to the keeper,
        # then its wait status to the step's status pipe.
        try:
            for fd in (init, ready, arrival, stdin, stdout, stderr):
                os.close(fd)
            if child > 0:
                os.write(program, struct.pack("=i", child))
                os.close(program)
                program = -1
                _, wait_status = os.waitpid(child, 0)
                os.write(status, struct.pack("=i", wait_status))
        except BaseException:
            pass
        for fd in (program, status):
            try:
                os.close(fd)
            except OSError:
                pass


def report(stderr, what, error):
    try:
        os.write(stderr, f"code-runner: cannot {what}: {error}\n".encode())
    except OSError:
        pass


def prepare(job, arrival, stdio):
    """The program's own set-up while the step's init makes its mounts:
    nothing here needs the step's namespaces. A session of its own, its pid
    to the init, the OOM killer's first pick, its standard descriptors and
    the streams a fresh interpreter would have made on them (the zygote's
    were made on /dev/null: a file, seekable), and the step's environment."""
    os.setsid()
    os.write(arrival, struct.pack("=i", os.getpid()))
    adj = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
    os.write(adj, b"1000")
    os.close(adj)
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
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
    env = dict(job["env"])
    if dict(os.environ) != env:
        os.environ.clear()
        os.environ.update(env)


def confine(job):
    """In the step's namespaces: nothing of the zygote's open, the job's
    directory and limits, every capability dropped, then the filter."""
    os.closerange(3, 1 << 20)
    os.chdir(job["dir"])

    def limit(value):
        return resource.RLIM_INFINITY if value >= 1 << 63 else value

    for which, soft, hard in job["rlimits"]:
        resource.setrlimit(which, (limit(soft), limit(hard)))
    # The bounding and ambient sets are empty and no_new_privs is on since
    # the zygote's `harden`; what is left is the effective, permitted and
    # inheritable sets, then the filter.
    check(libc.capset(CAP_HEADER, CAP_DATA), "drop capabilities")
    check(
        libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(FPROG), 0, 0),
        "install the seccomp filter",
    )
    return job


def run(job):
    """Runs the job's file as `python3 FILE ARGS` would, in this __main__,
    and ends as that interpreter would end."""
    argv = job["argv"]
    # As python 3.9 and later name the script: absolute.
    path = os.path.abspath(argv[1])
    sys.argv = argv[1:]
    sys.orig_argv = list(argv)
    sys.path[0] = os.path.dirname(path)
    loader = importlib.machinery.SourceFileLoader("__main__", path)
    scope = sys.modules["__main__"].__dict__
    end = ending(scope)
    try:
        with open(path, "rb") as f:
            source = f.read()
        code = compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as e:
        sys.excepthook(type(e), e.with_traceback(None), None)
        end(1)
    except OSError as e:
        print(
            f"{argv[0]}: can't open file {path!r}: [Errno {e.errno}] {e.strerror}",
            file=sys.stderr,
        )
        end(2)
    builtins = scope["__builtins__"]
    # From here on this function reads no global name: the job's globals
    # are __main__'s, which were this script's.
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
    except SystemExit as e:
        end(e)
    except KeyboardInterrupt as e:
        end(e, code)
    except BaseException as e:
        end(e, code)
    end(0)


def ending(scope):
    """How the program ends: what an interpreter does at its end that a job
    can see (the exit status of SystemExit, the traceback of an uncaught
    exception, non-daemon threads joined, atexit hooks, the job's objects
    finalized, the standard streams flushed), then `_exit` — never the
    teardown of the zygote's own objects, whose copy-on-write pages would
    all be touched for nothing (most of a hello's time, else)."""
    sys_, exit_, kill, getpid = sys, os._exit, os.kill, os.getpid
    atexit_, gc_, signal_ = atexit, gc, signal
    pristine = set(sys.modules)

    def end(outcome, code=None):
        interrupted = False
        if isinstance(outcome, SystemExit):
            status = outcome.code
            if status is None:
                status = 0
            elif not isinstance(status, int):
                try:
                    print(status, file=sys_.stderr)
                except Exception:
                    pass
                status = 1
        elif isinstance(outcome, BaseException):
            tb = outcome.__traceback__
            while tb is not None and tb.tb_frame.f_code is not code:
                tb = tb.tb_next
            # The hook prints the traceback the exception holds.
            sys_.excepthook(type(outcome), outcome.with_traceback(tb), tb)
            interrupted = isinstance(outcome, KeyboardInterrupt)
            status = 1
        else:
            status = outcome
        threading = sys_.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        atexit_._run_exitfuncs()
        # The job's objects go as a fresh interpreter's teardown takes them
        # (their __del__ runs, their files are flushed): its __main__ and
        # the modules it imported.
        scope.clear()
        for name in [name for name in sys_.modules if name not in pristine]:
            module = sys_.modules.pop(name, None)
            if hasattr(module, "__dict__"):
                module.__dict__.clear()
        gc_.collect()
        for stream in (sys_.stdout, sys_.stderr):
            try:
                if stream is not None and not stream.closed:
                    stream.flush()
            except Exception:
                status = 120
        if interrupted:
            signal_.signal(signal_.SIGINT, signal_.SIG_DFL)
            kill(getpid(), signal_.SIGINT)
        exit_(status & 0xFF if isinstance(status, int) else 1)

    return end


# The zygote's objects, created once, are never collected again: a fork's
# collector leaves them (and their pages) alone.
harden()
rehearse()
gc.freeze()
run(serve())
