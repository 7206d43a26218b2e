#!/usr/bin/python3
"""Live output latency: the delay from a program's write to an SSE client
receiving it (docs/live.md). Not a test: it prints figures.

Usage: scripts/live-latency.py BASE_URL [RUNS] [LINES]

Submits RUNS jobs (default 3) with ?stream=true, one after the other, each a
python program that writes its clock (time.time_ns) on a line every 100 ms,
LINES lines (default 50); reads GET /results/{id}/events and, for each line,
takes the client's clock at reception minus the clock the program wrote.
Program and client must share a clock: run it on the machine of the worker.
Prints p50, p99 and max per run, in milliseconds.
"""
import http.client
import json
import sys
import time
import urllib.parse


def submit(base, lines):
    code = (
        "import time\n"
        f"for i in range({lines}):\n"
        "    print(time.time_ns(), flush=True)\n"
        "    time.sleep(0.1)\n"
    )
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    body = json.dumps({"language": "python", "code": code})
    conn.request("POST", "/run-code?stream=true", body, {"Content-Type": "application/json"})
    answer = json.loads(conn.getresponse().read())
    return answer["task_id"]


def delays(base, task):
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    conn.request("GET", f"/results/{task}/events")
    response = conn.getresponse()
    assert response.status == 200, response.status
    seen, event, partial = [], None, ""
    while True:
        line = response.fp.readline()
        if not line:
            break
        now = time.time_ns()
        line = line.decode().rstrip("\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event == "stdout":
            text = partial + json.loads(line[5:])["data"]
            *complete, partial = text.split("\n")
            for stamp in complete:
                seen.append((now - int(stamp)) / 1e6)
        elif line.startswith("data:") and event == "end":
            break
    return seen


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    base = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    lines = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    for run in range(1, runs + 1):
        got = delays(base, submit(base, lines))
        print(
            f"run {run}: {len(got)} lines, write-to-client delay p50 {percentile(got, 50):.2f} ms, "
            f"p99 {percentile(got, 99):.2f} ms, max {max(got):.2f} ms"
        )


if __name__ == "__main__":
    main()
