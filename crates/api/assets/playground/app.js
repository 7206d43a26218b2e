// The code-runner playground: pick a language, edit, run, see the result.
// Plain JavaScript against this server's own API; nothing loaded from
// elsewhere (the editor is CodeMirror 5, vendored under /codemirror/).
//
// A run streams: `POST /run-code?stream=true`, then the task's events from
// `GET /results/{id}/events` (Server-Sent Events, read with fetch so the API
// key header goes along), output shown as the program writes it. Should the
// stream break, the page waits with `GET /results/{id}?wait=N` (the server
// answers as soon as the task finishes), as it does for judge mode (tests).
// Interactive mode runs over the WebSocket `GET /run-code/ws`: what the user
// types in the terminal pane is the program's stdin.
"use strict";

const STARTERS = {
  python: `import sys

name = sys.stdin.read().strip() or "world"
print(f"Hello, {name}!")
`,
  javascript: `const input = require("fs").readFileSync(0, "utf8").trim();
console.log(\`Hello, \${input || "world"}!\`);
`,
  java: `import java.util.Scanner;

public class Main {
    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        String name = in.hasNextLine() ? in.nextLine().trim() : "";
        System.out.println("Hello, " + (name.isEmpty() ? "world" : name) + "!");
    }
}
`,
  cpp: `#include <iostream>
#include <string>

int main() {
    std::string name;
    std::getline(std::cin, name);
    std::cout << "Hello, " << (name.empty() ? "world" : name) << "!" << std::endl;
}
`,
  c: `#include <stdio.h>
#include <string.h>

int main(void) {
    char name[256] = "";
    if (!fgets(name, sizeof name, stdin) || name[0] == '\\n') strcpy(name, "world");
    name[strcspn(name, "\\n")] = '\\0';
    printf("Hello, %s!\\n", name);
    return 0;
}
`,
};

// CodeMirror's mode per language (clike covers C, C++ and Java).
const MODES = {
  python: "python", javascript: "javascript", java: "text/x-java", cpp: "text/x-c++src", c: "text/x-csrc",
};

const $ = (id) => document.getElementById(id);
const ui = {
  language: $("language"), version: $("version"), code: $("code"), stdin: $("stdin"),
  args: $("args"), apikey: $("apikey"), run: $("run"), status: $("status"),
  verdict: $("verdict"), time: $("time"), memory: $("memory"), exit: $("exit"),
  stdout: $("stdout"), stderr: $("stderr"), compileBox: $("compile-box"),
  compile: $("compile"), message: $("message"),
  tests: $("tests"), addTest: $("add-test"), testsHint: $("tests-hint"), checker: $("checker"),
  floatOptions: $("float-options"), checkerAbs: $("checker-abs"), checkerRel: $("checker-rel"),
  stopOnFailure: $("stop-on-failure"), judgeBox: $("judge-box"), summary: $("summary"),
  judgeRows: $("judge-rows"), compileTime: $("compile-time"), interactive: $("interactive"),
  terminalBox: $("terminal-box"), terminal: $("terminal"), terminalInput: $("terminal-input"),
  eof: $("eof"), interrupt: $("interrupt"), kill: $("kill"),
};
// The editor: CodeMirror when it loaded, the plain textarea otherwise.
const editor = typeof CodeMirror === "function"
  ? CodeMirror.fromTextArea(ui.code, {
    lineNumbers: true, matchBrackets: true, indentUnit: 4, tabSize: 4, indentWithTabs: false,
    viewportMargin: Infinity,
    extraKeys: {
      "Ctrl-Enter": () => run(), "Cmd-Enter": () => run(),
      // Tab indents with spaces (or indents the selected lines).
      Tab: (cm) => (cm.somethingSelected() ? cm.indentSelection("add") : cm.replaceSelection("    ", "end")),
      "Shift-Tab": (cm) => cm.indentSelection("subtract"),
    },
  })
  : null;
const getCode = () => (editor ? editor.getValue() : ui.code.value);
function setCode(text) {
  if (editor) editor.setValue(text);
  else ui.code.value = text;
}
// The interactive run in progress: its WebSocket.
let socket = null;
// What the user typed per language, so switching back and forth keeps it.
const drafts = {};
let languages = [];

function setStatus(text, busy) {
  ui.status.textContent = text;
  ui.status.className = "status " + (busy ? "busy" : "idle");
}

function clearResult() {
  for (const el of [ui.verdict, ui.time, ui.memory, ui.exit, ui.stdout, ui.stderr, ui.compile, ui.message,
    ui.compileTime]) {
    el.textContent = "";
  }
  ui.verdict.className = "verdict";
  ui.compileBox.hidden = true;
  ui.judgeBox.hidden = true;
  ui.summary.textContent = "";
  ui.judgeRows.replaceChildren();
}

// The tests panel: rows of (name, stdin, expected output), built with DOM
// calls (the page's policy allows no inline handlers).
function addTestRow(test = {}) {
  const row = document.createElement("div");
  row.className = "test-row";
  const field = (labelText, cls, element, value) => {
    const label = document.createElement("label");
    label.className = cls;
    label.append(labelText, element);
    element.spellcheck = false;
    element.value = value ?? "";
    element.setAttribute("aria-label", labelText);
    row.appendChild(label);
    return element;
  };
  const name = document.createElement("input");
  name.type = "text";
  name.placeholder = String(ui.tests.children.length + 1);
  field("Name", "name", name, test.name).classList.add("test-name");
  const stdin = document.createElement("textarea");
  stdin.rows = 2;
  field("Input", "stdin", stdin, test.stdin).classList.add("test-stdin");
  const expected = document.createElement("textarea");
  expected.rows = 2;
  field("Expected output", "expected", expected, test.expected_output).classList.add("test-expected");
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "remove";
  remove.title = "Remove this test";
  remove.textContent = "✕";
  remove.addEventListener("click", () => { row.remove(); updateTestsHint(); });
  row.appendChild(remove);
  ui.tests.appendChild(row);
  updateTestsHint();
  return row;
}

function updateTestsHint() {
  ui.testsHint.hidden = ui.tests.children.length > 0;
  // Unnamed tests are named by position: keep the placeholders in step.
  [...ui.tests.children].forEach((row, i) => {
    row.querySelector(".test-name").placeholder = String(i + 1);
  });
}

function collectTests() {
  return [...ui.tests.children].map((row) => {
    const test = {
      stdin: row.querySelector(".test-stdin").value,
      expected_output: row.querySelector(".test-expected").value,
    };
    const name = row.querySelector(".test-name").value.trim();
    if (name) test.name = name;
    return test;
  });
}

function collectChecker() {
  const checker = { type: ui.checker.value };
  if (checker.type === "float") {
    for (const [key, input] of [["abs", ui.checkerAbs], ["rel", ui.checkerRel]]) {
      const text = input.value.trim();
      // Sent as typed when it is not a number: the server's 422 says why.
      if (text) checker[key] = Number.isFinite(Number(text)) ? Number(text) : text;
    }
  }
  return checker;
}

const FAILING = new Set(["wrong_answer", "presentation_error", "time_limit", "memory_limit",
  "output_limit", "runtime_error", "judge_error"]);

// The per-test table: the tests finished so far while the job runs, all of
// them (skipped ones included) once it is done.
function showTests(tests, summary, running) {
  ui.judgeBox.hidden = false;
  const rows = tests.map((t) => {
    const tr = document.createElement("tr");
    const cell = (text, cls) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    };
    cell(t.name, "name");
    const kind = t.verdict === "accepted" ? "v-accepted" : t.verdict === "skipped" ? "v-skipped" : "v-fail";
    cell(t.verdict, "verdict " + kind);
    cell(typeof t.time_ms === "number" ? `${t.time_ms} ms` : "", "time");
    cell(typeof t.memory_peak_kib === "number" ? `${(t.memory_peak_kib / 1024).toFixed(1)} MiB` : "", "memory");
    cell(t.checker_message ?? "", "msg");
    return tr;
  });
  ui.judgeRows.replaceChildren(...rows);
  if (summary) {
    let text = `${summary.passed}/${summary.total} passed`;
    if (summary.failed) text += `, ${summary.failed} failed`;
    if (summary.skipped) text += `, ${summary.skipped} skipped`;
    if (summary.first_failure !== null && summary.first_failure !== undefined) {
      text += ` · first failure: ${summary.first_failure}`;
    }
    ui.summary.textContent = text;
  } else if (running) {
    const failed = tests.filter((t) => FAILING.has(t.verdict)).length;
    ui.summary.textContent = `running: ${tests.length}/${running} finished` + (failed ? `, ${failed} failed` : "");
  }
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = ui.apikey.value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function loadLanguages() {
  const response = await fetch("/languages");
  languages = await response.json();
  for (const lang of languages) {
    const option = document.createElement("option");
    option.value = lang.name;
    option.textContent = lang.name;
    ui.language.appendChild(option);
  }
  const saved = localStorage.getItem("code-runner.language");
  if (saved && languages.some((l) => l.name === saved)) {
    ui.language.value = saved;
  } else if (languages.some((l) => l.name === "python")) {
    ui.language.value = "python";
  }
  showLanguage();
}

function showLanguage() {
  const lang = languages.find((l) => l.name === ui.language.value);
  ui.version.textContent = lang ? `${lang.version} · ${lang.file_name}` : "";
  setCode(drafts[ui.language.value] ?? STARTERS[ui.language.value] ?? "");
  if (editor) editor.setOption("mode", MODES[ui.language.value] ?? null);
  localStorage.setItem("code-runner.language", ui.language.value);
}

// Without CodeMirror: a monospace textarea that edits like a code editor: Tab indents (or
// indents the selected lines), Shift+Tab dedents, Enter keeps the
// indentation, Ctrl/Cmd+Enter runs.
function onKey(event) {
  const ta = ui.code;
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
    event.preventDefault();
    run();
    return;
  }
  const { selectionStart: start, selectionEnd: end, value } = ta;
  if (event.key === "Tab") {
    event.preventDefault();
    const lineStart = value.lastIndexOf("\n", start - 1) + 1;
    if (start === end && !event.shiftKey) {
      ta.setRangeText("    ", start, end, "end");
      return;
    }
    const block = value.slice(lineStart, end);
    const changed = event.shiftKey
      ? block.replace(/^( {1,4}|\t)/gm, "")
      : block.replace(/^/gm, "    ");
    ta.setRangeText(changed, lineStart, end, "select");
    return;
  }
  if (event.key === "Enter" && !event.shiftKey) {
    const lineStart = value.lastIndexOf("\n", start - 1) + 1;
    const indent = value.slice(lineStart, start).match(/^[ \t]*/)[0];
    if (indent) {
      event.preventDefault();
      ta.setRangeText("\n" + indent, start, end, "end");
    }
  }
}

function describeError(body, status) {
  if (body && Array.isArray(body.detail)) {
    const lines = body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`);
    // The server lists at most ten issues and counts the rest.
    if (body.issues_omitted) lines.push(`… and ${body.issues_omitted} more`);
    return lines.join("\n");
  }
  if (body && body.detail) return String(body.detail);
  return `HTTP ${status}`;
}

function showResult(body) {
  const failed = body.status !== "SUCCESS";
  setStatus(failed ? "Finished with an error" : "Finished", false);
  ui.verdict.textContent = body.verdict || body.status;
  ui.verdict.className = "verdict " + (failed ? "fail" : "ok");
  ui.stdout.textContent = body.stdout ?? (body.result && body.result.output) ?? "";
  ui.stderr.textContent = body.stderr ?? "";
  if (body.compile_output) {
    ui.compileBox.hidden = false;
    ui.compile.textContent = body.compile_output;
  }
  // The compile step's time apart from the run's (compiled languages).
  if (typeof body.compile_time_ms === "number") {
    ui.compileTime.textContent = `compile ${body.compile_time_ms} ms ·`;
  }
  if (body.wall_time_ms !== undefined) {
    const run = typeof body.compile_time_ms === "number" ? "run " : "";
    ui.time.textContent = `${run}${body.wall_time_ms} ms wall, ${body.cpu_time_ms} ms cpu`;
  }
  // `null` when the sandbox could not measure it: not a peak of 0.
  if (typeof body.memory_peak_kib === "number") {
    ui.memory.textContent = `· ${(body.memory_peak_kib / 1024).toFixed(1)} MiB`;
  } else if (body.memory_peak_kib === null) {
    ui.memory.textContent = "· memory unknown";
  }
  if (body.exit_code !== null && body.exit_code !== undefined) {
    ui.exit.textContent = `· exit ${body.exit_code}`;
  } else if (body.signal) {
    ui.exit.textContent = `· signal ${body.signal}`;
  }
  if (Array.isArray(body.tests)) showTests(body.tests, body.summary, 0);
  if (failed && typeof body.result === "string" && body.verdict !== "runtime_error") {
    ui.message.textContent = body.result;
  }
}

// Output as it arrives: appended to its pane (and to the terminal in
// interactive mode); the final result replaces it with the stored output.
function appendOutput(stream, data) {
  if (!data) return;
  if (stream === "stdout" || stream === "stderr") {
    ui[stream].appendChild(document.createTextNode(data));
    ui[stream].scrollTop = ui[stream].scrollHeight;
    if (socket) terminalWrite(data, stream === "stderr" ? "t-err" : null);
  } else if (stream === "compile_stdout" || stream === "compile_stderr") {
    ui.compileBox.hidden = false;
    ui.compile.appendChild(document.createTextNode(data));
  }
}

function terminalWrite(text, cls) {
  const span = document.createElement("span");
  if (cls) span.className = cls;
  span.textContent = text;
  ui.terminal.appendChild(span);
  ui.terminal.scrollTop = ui.terminal.scrollHeight;
}

// The status line's clock while a task is queued or running.
let ticking = null;
function tick(started, state) {
  clearInterval(ticking);
  const show = () => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    setStatus(state === "running" ? `Running… ${seconds} s` : `Queued… ${seconds} s`, true);
  };
  show();
  ticking = setInterval(show, 100);
}
function stopTicking() {
  clearInterval(ticking);
  ticking = null;
}

// Server-Sent Events read from a fetch response: calls `onEvent(name,
// data)` per event; resolves when the stream ends.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue; // keep-alive comment
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}

// Follows task `id` over SSE; the final body, or null when the stream broke
// before it (the caller then waits for the result the plain way).
async function follow(id, started) {
  let result = null;
  try {
    const response = await fetch(`/results/${id}/events`, { headers: headers() });
    if (!response.ok || !response.body) return null;
    await readEvents(response, (name, data) => {
      const body = JSON.parse(data);
      if (name === "state") tick(started, body.state);
      else if (name === "result") result = body;
      else appendOutput(name, body.data);
    });
  } catch (err) {
    return result;
  }
  return result;
}

async function run() {
  if (ui.run.disabled) return;
  drafts[ui.language.value] = getCode();
  // For this tab only, never on disk: the key is a credential.
  sessionStorage.setItem("code-runner.apikey", ui.apikey.value);
  clearResult();
  const request = { language: ui.language.value, code: getCode(), stdin: ui.stdin.value };
  const args = ui.args.value.trim();
  if (args) request.args = args.split(/\s+/);
  const tests = collectTests();
  if (tests.length) {
    request.tests = tests;
    request.checker = collectChecker();
    request.stop_on_first_failure = ui.stopOnFailure.checked;
  }
  ui.terminalBox.hidden = true;
  if (ui.interactive.checked && !tests.length) {
    delete request.stdin;
    runInteractive(request);
    return;
  }
  ui.run.disabled = true;
  setStatus("Submitting…", true);
  const started = performance.now();
  try {
    // Judge mode reports per-test progress by polling; a plain run streams.
    const live = !tests.length;
    const submitted = await fetch(live ? "/run-code?stream=true" : "/run-code", {
      method: "POST", headers: headers(), body: JSON.stringify(request),
    });
    const created = await submitted.json().catch(() => null);
    if (!submitted.ok) {
      setStatus("Refused", false);
      ui.message.textContent = describeError(created, submitted.status);
      return;
    }
    const id = created.task_id;
    if (live) {
      tick(started, "queued");
      const result = await follow(id, started);
      stopTicking();
      if (result && result.status !== "PENDING") {
        showResult(result);
        return;
      }
    }
    for (;;) {
      const response = await fetch(`/results/${id}?wait=2`, { headers: headers() });
      const body = await response.json().catch(() => null);
      if (!response.ok) {
        setStatus("Error", false);
        ui.message.textContent = describeError(body, response.status);
        return;
      }
      if (body.status !== "PENDING") {
        showResult(body);
        return;
      }
      // A judged job's progress: the tests finished so far.
      if (tests.length && Array.isArray(body.tests)) showTests(body.tests, null, tests.length);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      setStatus(body.state === "running" ? `Running… ${seconds} s` : `Queued… ${seconds} s`, true);
    }
  } catch (err) {
    setStatus("Error", false);
    ui.message.textContent = String(err);
  } finally {
    stopTicking();
    ui.run.disabled = false;
  }
}

// Interactive mode: the run request as the WebSocket's first message, then
// each line typed in the terminal as stdin; End input, Interrupt and Kill
// send eof, SIGINT and SIGKILL. (A browser's WebSocket cannot carry the
// X-API-Key header: on a server that requires keys, use the CLI.)
function runInteractive(request) {
  ui.run.disabled = true;
  ui.terminal.replaceChildren();
  ui.terminalBox.hidden = false;
  setInputOpen(true);
  setStatus("Connecting…", true);
  const started = performance.now();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/run-code/ws`);
  socket = ws;
  let finished = false;
  ws.addEventListener("open", () => {
    ws.send(JSON.stringify(request));
    ui.terminalInput.focus();
  });
  ws.addEventListener("message", (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    switch (message.type) {
      case "accepted": tick(started, "queued"); break;
      case "state": tick(started, message.state); break;
      case "result":
        finished = true;
        stopTicking();
        showResult(message);
        break;
      case "error":
        ui.message.textContent = message.message;
        break;
      default: appendOutput(message.type, message.data);
    }
  });
  ws.addEventListener("close", (event) => {
    stopTicking();
    if (socket === ws) socket = null;
    setInputOpen(false);
    ui.run.disabled = false;
    if (!finished) {
      setStatus("Disconnected", false);
      if (!ui.message.textContent) {
        ui.message.textContent = `connection closed (${event.code}${event.reason ? ": " + event.reason : ""})`;
      }
    }
  });
}

function setInputOpen(open) {
  for (const el of [ui.terminalInput, ui.eof, ui.interrupt, ui.kill]) el.disabled = !open;
}

function sendToProgram(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function onTerminalKey(event) {
  if (event.key === "Enter") {
    event.preventDefault();
    const line = ui.terminalInput.value + "\n";
    ui.terminalInput.value = "";
    // The program's stdin is not a terminal, so nothing echoes it: the page does.
    terminalWrite(line, "t-in");
    sendToProgram({ type: "stdin", data: line });
  } else if (event.ctrlKey && (event.key === "d" || event.key === "D")) {
    event.preventDefault();
    endInput();
  } else if (event.ctrlKey && (event.key === "c" || event.key === "C") && !ui.terminalInput.value) {
    event.preventDefault();
    sendToProgram({ type: "signal", signal: "SIGINT" });
  }
}

function endInput() {
  const pending = ui.terminalInput.value;
  if (pending) {
    terminalWrite(pending, "t-in");
    sendToProgram({ type: "stdin", data: pending });
    ui.terminalInput.value = "";
  }
  sendToProgram({ type: "eof" });
  ui.terminalInput.disabled = true;
  ui.eof.disabled = true;
}

if (editor) {
  editor.on("change", () => { drafts[ui.language.value] = editor.getValue(); });
} else {
  ui.code.addEventListener("keydown", onKey);
  ui.code.addEventListener("input", () => { drafts[ui.language.value] = ui.code.value; });
}
ui.interactive.addEventListener("change", () => {
  // Interactive runs read the terminal, not the stdin box.
  ui.stdin.disabled = ui.interactive.checked;
  if (!ui.interactive.checked && !socket) ui.terminalBox.hidden = true;
});
ui.terminalInput.addEventListener("keydown", onTerminalKey);
ui.eof.addEventListener("click", endInput);
ui.interrupt.addEventListener("click", () => sendToProgram({ type: "signal", signal: "SIGINT" }));
ui.kill.addEventListener("click", () => sendToProgram({ type: "signal", signal: "SIGKILL" }));
ui.language.addEventListener("change", showLanguage);
ui.run.addEventListener("click", run);
ui.addTest.addEventListener("click", () => addTestRow().querySelector(".test-stdin").focus());
ui.checker.addEventListener("change", () => { ui.floatOptions.hidden = ui.checker.value !== "float"; });
// Earlier versions kept the key in localStorage, on disk for good: forget it.
localStorage.removeItem("code-runner.apikey");
ui.apikey.value = sessionStorage.getItem("code-runner.apikey") || "";
loadLanguages().catch((err) => {
  setStatus("Cannot load the languages", false);
  ui.message.textContent = String(err);
});
