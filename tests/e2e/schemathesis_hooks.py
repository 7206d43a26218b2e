"""Schemathesis hooks for tests/e2e/schemathesis.sh (loaded through
SCHEMATHESIS_HOOKS).

The OpenAPI document states every rule of a `POST /run-code` body that JSON
Schema can state, but two rules of extra files it cannot: no two files with
the same `name` (`uniqueItems` compares whole items, not one field), and no
file named after the Java code's public class (`Foo.java` next to `public
class Foo`). A request breaking only those is valid to the schema and
rightly refused with a 422 naming the file; that refusal is not a failure.
The same two rules hold for a custom checker's and an interactor's files
(judge mode), and judge mode's `checker`, `interactor` and
`stop_on_first_failure` need `tests` (stated with `dependentRequired`, which
not every generator honours); `checker` and `interactor` exclude each other. A run request
naming a test set (`"tests": "sha256:<hex>"`) that was never stored is
refused with a 422 too: whether a set exists is state, not schema. Every
other failure, and every other 422, still counts.
"""

import schemathesis

# The messages of those two refusals (crates/api/src/request.rs).
UNSTATABLE = ("is given twice", "is the name this program's own source is saved under")
# The same for judge mode (crates/api/src/judge.rs).
UNSTATABLE_CHECKER = ("is given twice", "is the name the checker's own source is saved under")
UNSTATABLE_INTERACTOR = ("is given twice", "is the name the interactor's own source is saved under")
NEEDS_TESTS = "is a judge-mode field: it needs 'tests'"
NOT_WITH_INTERACTOR = "is judged by the interactor's exit code"
# A test set id no POST /testsets stored (crates/api/src/testsets.rs).
UNKNOWN_TESTSET = "is stored (never stored, or expired)"


def _unstatable(issue):
    if not isinstance(issue, dict):
        return False
    loc = issue.get("loc", [])
    msg = str(issue.get("msg", ""))
    if loc[:2] == ["body", "files"] and loc[-1:] == ["name"]:
        return any(text in msg for text in UNSTATABLE)
    if loc[:3] == ["body", "checker", "files"] and loc[-1:] == ["name"]:
        return any(text in msg for text in UNSTATABLE_CHECKER)
    if loc[:3] == ["body", "interactor", "files"] and loc[-1:] == ["name"]:
        return any(text in msg for text in UNSTATABLE_INTERACTOR)
    if loc == ["body", "checker"] and NOT_WITH_INTERACTOR in msg:
        return True
    if loc in (["body", "checker"], ["body", "interactor"], ["body", "stop_on_first_failure"]):
        return NEEDS_TESTS in msg
    if loc == ["body", "tests"]:
        return UNKNOWN_TESTSET in msg
    return False


def _only_unstatable_file_name_refusals(response):
    if response.status_code != 422:
        return False
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return False
    return (
        isinstance(detail, list)
        and len(detail) > 0
        and all(_unstatable(issue) for issue in detail)
    )


# The Piston API (crates/api/src/piston) refuses with 400 and Piston's
# `{"message"}` what its schema cannot state: a `version` range no installed
# version satisfies, a base64/hex file that does not decode to text, and the
# extra files' name rules above.
PISTON_UNSTATABLE = (
    "runtime is unknown",
    "once decoded",
    "is not valid base64",
    "is not valid hex",
    "is given twice",
    "is the name this program's own source is saved under",
    "is reserved for programs' own source",
)


def _unstatable_piston_refusal(case, response):
    if response.status_code != 400 or not case.path.startswith("/api/v2/"):
        return False
    try:
        message = response.json()["message"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(message, str) and any(text in message for text in PISTON_UNSTATABLE)


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps a failure unless it is a schema-valid request refused only for
    one of the rules the schema cannot state."""
    return not (
        failure.code == "ST202"
        and (
            _only_unstatable_file_name_refusals(response)
            or _unstatable_piston_refusal(case, response)
        )
    )


# --- Judge0's API (crates/api/src/judge0) ------------------------------------
# A `callback_url` is checked by resolving its host and refusing non-public
# addresses: generated URLs would make the server look up random names beyond
# loopback, and whether a name resolves is state, not schema. And with
# `base64_encoded=true`, what a valid `source_code` is depends on decoding it,
# which a schema cannot state. Such generated requests are not sent.


def _judge0_callback(item):
    return isinstance(item, dict) and isinstance(item.get("callback_url"), str)


@schemathesis.hook
def filter_case(context, case):
    path = case.operation.path
    if not path.startswith("/submissions") or case.method.upper() != "POST":
        return True
    if isinstance(case.query, dict) and case.query.get("base64_encoded") == "true":
        return False
    body = case.body
    if _judge0_callback(body):
        return False
    if isinstance(body, dict) and isinstance(body.get("submissions"), list):
        return not any(_judge0_callback(item) for item in body["submissions"])
    return True
