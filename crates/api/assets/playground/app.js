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
// Earlier versions kept the key in localStorage, on disk for good: forget it.
localStorage.removeItem("code-runner.apikey");
ui.apikey.value = sessionStorage.getItem("code-runner.apikey") || "";
loadLanguages().catch((err) => {
  setStatus("Cannot load the languages", false);
  ui.message.textContent = String(err);
});
