// The code-runner playground: pick a language, edit, run, see the result.
// Plain JavaScript against this server's own API; nothing loaded from
// elsewhere. Waiting uses `GET /results/{id}?wait=N` (the server answers as
// soon as the task finishes), so the page never polls in a tight loop.
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
  judgeRows: $("judge-rows"),
};
// What the user typed per language, so switching back and forth keeps it.
const drafts = {};
let languages = [];

function setStatus(text, busy) {
  ui.status.textContent = text;
  ui.status.className = "status " + (busy ? "busy" : "idle");
}

function clearResult() {
  for (const el of [ui.verdict, ui.time, ui.memory, ui.exit, ui.stdout, ui.stderr, ui.compile, ui.message]) {
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
  ui.code.value = drafts[ui.language.value] ?? STARTERS[ui.language.value] ?? "";
  localStorage.setItem("code-runner.language", ui.language.value);
}

// A monospace textarea that edits like a code editor: Tab indents (or
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
  if (body.wall_time_ms !== undefined) {
    ui.time.textContent = `${body.wall_time_ms} ms wall, ${body.cpu_time_ms} ms cpu`;
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

async function run() {
  if (ui.run.disabled) return;
  drafts[ui.language.value] = ui.code.value;
  // For this tab only, never on disk: the key is a credential.
  sessionStorage.setItem("code-runner.apikey", ui.apikey.value);
  clearResult();
  ui.run.disabled = true;
  setStatus("Submitting…", true);
  const request = { language: ui.language.value, code: ui.code.value, stdin: ui.stdin.value };
  const args = ui.args.value.trim();
  if (args) request.args = args.split(/\s+/);
  const tests = collectTests();
  if (tests.length) {
    request.tests = tests;
    request.checker = collectChecker();
    request.stop_on_first_failure = ui.stopOnFailure.checked;
  }
  const started = performance.now();
  try {
    const submitted = await fetch("/run-code", {
      method: "POST", headers: headers(), body: JSON.stringify(request),
    });
    const created = await submitted.json().catch(() => null);
    if (!submitted.ok) {
      setStatus("Refused", false);
      ui.message.textContent = describeError(created, submitted.status);
      return;
    }
    const id = created.task_id;
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
    ui.run.disabled = false;
  }
}

ui.code.addEventListener("keydown", onKey);
ui.code.addEventListener("input", () => { drafts[ui.language.value] = ui.code.value; });
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
