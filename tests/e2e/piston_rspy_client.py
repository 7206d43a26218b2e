"""Runs the Piston client piston-rspy (PyPI; Python bindings of the Rust
crate piston_rs), unchanged, against a live code-runner: the five languages
with stdin and arguments, a compile error and a timeout, through
`POST /api/v2/execute` and `GET /api/v2/runtimes`.

Usage: python piston_rspy_client.py http://127.0.0.1:PORT/api/v2

It talks to loopback only. The client defaults to the public emkc.org host;
it is always given the local URL, and two guards make any other connection
fail:
- Python sockets refuse non-loopback addresses (a patched `connect`);
- the client's own HTTP stack (Rust's reqwest, which Python's socket module
  does not see) is run with every proxy variable pointing at a closed port
  on loopback and NO_PROXY=127.0.0.1, set by the test that starts this
  script: a request to any host but 127.0.0.1 goes to that dead proxy. The
  script checks that guard first, with `localhost` (loopback, but not in
  NO_PROXY), so the check itself never leaves the machine.

Prints "ok" and exits 0 when every check passed.
"""

import asyncio
import ipaddress
import os
import socket
import sys

import piston_rspy as piston

BASE = sys.argv[1]

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _check_loopback(address):
    if isinstance(address, tuple):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise AssertionError(f"a connection to {address!r}, not loopback, was attempted")


def _connect_loopback_only(self, address):
    _check_loopback(address)
    return _connect(self, address)


def _connect_ex_loopback_only(self, address):
    _check_loopback(address)
    return _connect_ex(self, address)


socket.socket.connect = _connect_loopback_only
socket.socket.connect_ex = _connect_ex_loopback_only

# Each reads "hello" from stdin and prints it with its arguments.
PROGRAMS = {
    "python": "import sys\nprint(input() + ' ' + ','.join(sys.argv[1:]))\n",
    "javascript": "const line = require('fs').readFileSync(0, 'utf8').split('\\n')[0];\n"
    "console.log(line + ' ' + process.argv.slice(2).join(','));\n",
    "java": "import java.util.Scanner;\n"
    "public class Main { public static void main(String[] a) {\n"
    "  String line = new Scanner(System.in).nextLine();\n"
    "  System.out.println(line + \" \" + String.join(\",\", a)); } }\n",
    "c": "#include <stdio.h>\n#include <string.h>\n"
    "int main(int argc, char **argv) { char b[64];\n"
    "  if (!fgets(b, sizeof b, stdin)) return 3; b[strcspn(b, \"\\n\")] = 0;\n"
    "  printf(\"%s \", b); for (int i = 1; i < argc; i++) printf(i > 1 ? \",%s\" : \"%s\", argv[i]);\n"
    "  printf(\"\\n\"); return 0; }\n",
    "c++": "#include <iostream>\n#include <string>\n"
    "int main(int argc, char **argv) { std::string line; std::getline(std::cin, line);\n"
    "  std::cout << line << ' '; for (int i = 1; i < argc; i++) std::cout << (i > 1 ? \",\" : \"\") << argv[i];\n"
    "  std::cout << '\\n'; }\n",
}
COMPILED = {"java", "c", "c++"}


def executor(language, code):
    return piston.Executor().set_language(language).set_version("*").add_file(
        piston.File().set_content(code)
    )


async def main():
    assert BASE.startswith("http://127.0.0.1:"), BASE
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        assert os.environ.get(name, "").startswith("http://127.0.0.1:"), f"{name} unset"
    client = piston.Client.with_url(BASE)
    assert client.url == BASE, client.url

    # The guard: a host outside NO_PROXY is sent to the dead proxy.
    guarded = piston.Client.with_url(BASE.replace("127.0.0.1", "localhost"))
    try:
        await guarded.fetch_runtimes()
    except RuntimeError:
        pass
    else:
        raise AssertionError("a request to a host outside NO_PROXY got through")

    runtimes = await client.fetch_runtimes()
    names = {runtime.language for runtime in runtimes}
    assert set(PROGRAMS) <= names, names

    for language, code in PROGRAMS.items():
        request = executor(language, code).set_stdin("hello").add_args(["1", "2"])
        response = await client.execute(request)
        assert response.is_ok(), (language, response.status, response.run.stderr)
        assert response.language == language, (language, response.language)
        assert response.run.stdout == "hello 1,2\n", (language, response.run.output)
        assert response.run.code == 0 and response.run.is_ok(), (language, response.run.code)
        assert response.run.signal is None, (language, response.run.signal)
        assert (response.compile is not None) == (language in COMPILED), language
        if response.compile is not None:
            assert response.compile.code == 0, (language, response.compile.output)

    # A compile error: Piston copies the failed compile stage into run.
    response = await client.execute(executor("c", "int main(void) { return 0 }\n"))
    assert response.is_ok(), response.status
    assert response.compile is not None and response.compile.is_err(), response.compile
    assert "error" in response.compile.stderr, response.compile.stderr
    assert response.run.stderr == response.compile.stderr
    assert response.run.code == response.compile.code

    # A timeout: killed, no exit code.
    response = await client.execute(
        executor("python", "while True:\n    pass\n").set_run_timeout(500)
    )
    assert response.is_ok(), response.status
    assert response.run.signal == "SIGKILL", response.run.signal
    assert response.run.code is None, response.run.code

    # A refusal comes back as the client's synthetic result of a non-200.
    response = await client.execute(executor("cobol", "x"))
    assert response.status == 400, response.status
    assert "cobol-* runtime is unknown" in response.run.stderr, response.run.stderr

    print("ok", flush=True)


asyncio.run(main())
# piston-rspy's Rust runtime keeps threads that may still call into Python
# while the interpreter finalizes, which sometimes aborts it ("Fatal Python
# error: PyGILState_Release", a fault of the binding, seen after every check
# had passed). Every check is done: leave without finalizing.
sys.stdout.flush()
os._exit(0)
