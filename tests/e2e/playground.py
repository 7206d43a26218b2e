"""The web playground in a real browser: Debian's headless Chromium, driven
by Selenium through Debian's chromedriver (no driver download).

Usage: python playground.py http://127.0.0.1:PORT

- The editor is CodeMirror (vendored): present, with line numbers; Python
  keywords highlighted; the mode follows the language select (C, Java, C++,
  JavaScript); brackets matched. A program typed through the keyboard
  (CodeMirror indents after a colon) runs on the stdin box and shows its
  output, verdict, time and memory (an unknown peak, `null`, as unknown).
- Live output: a program that prints, sleeps 2 s and prints again shows its
  first line while it still runs (no verdict yet, no second line), then all.
- A failing C program: stderr, verdict, exit code; compile and run times
  shown apart.
- Interactive mode (WebSocket): a guessing game played by typing into the
  terminal pane; an `input()` loop ended with End input; Interrupt sends
  SIGINT to a program that would run forever.
- The API key is kept in sessionStorage only; judge mode (tests panel) still
  judges two tests; the Swagger UI renders at /docs.
- Both pages are served with a strict Content-Security-Policy: the browser
  must log no violation. Nothing beyond loopback: every host name but
  127.0.0.1 fails to resolve in this browser, and the test fails if the page
  tried one (a console error) or loaded any resource from elsewhere.
"""

import sys
import time
from urllib.parse import urlparse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

base = sys.argv[1].rstrip("/")
assert urlparse(base).hostname == "127.0.0.1", base
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
             "--window-size=1280,900",
             # Loopback only: no other name resolves, no proxy, no background traffic.
             "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
             "--no-proxy-server", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"):
    options.add_argument(flag)
# The console, to see Content-Security-Policy violations and failed loads.
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
console = []


def check_page_stayed_local():
    """Every resource the page loaded came from loopback; nothing was refused."""
    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".concat([location.href])")
    foreign = [u for u in urls if urlparse(u).hostname not in ("127.0.0.1",)]
    assert not foreign, foreign
    console.extend(entry["message"] for entry in driver.get_log("browser"))
    bad = [m for m in console
           if "Content Security Policy" in m or "ERR_NAME_NOT_RESOLVED" in m]
    assert not bad, bad


def set_code(text):
    driver.execute_script("editor.setValue(arguments[0])", text)


def text(element_id):
    return driver.find_element(By.ID, element_id).text


def select_language(name):
    Select(driver.find_element(By.ID, "language")).select_by_value(name)


def run_and_wait():
    driver.find_element(By.ID, "run").click()
    wait.until(lambda d: text("verdict") != "")


try:
    wait = WebDriverWait(driver, 60)
    driver.get(base + "/")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#language option")) >= 5)
    select_language("python")

    # The editor: CodeMirror with line numbers, Python highlighted.
    assert driver.find_element(By.CSS_SELECTOR, ".CodeMirror").is_displayed()
    assert not driver.find_element(By.ID, "code").is_displayed(), "the textarea is replaced"
    assert driver.find_elements(By.CSS_SELECTOR, ".CodeMirror-linenumber"), "no line numbers"
    assert "Hello" in driver.execute_script("return editor.getValue()"), "no starter program"
    assert driver.execute_script("return editor.getOption('mode')") == "python"
    keywords = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".CodeMirror .cm-keyword, .CodeMirror .cm-type")]
    assert "import" in keywords, keywords
    # The mode follows the language; each language is highlighted.
    for name, mode, keyword in (("c", "text/x-csrc", "return"), ("java", "text/x-java", "public"),
                                ("cpp", "text/x-c++src", "int"),
                                ("javascript", "javascript", "const")):
        select_language(name)
        assert driver.execute_script("return editor.getOption('mode')") == mode, name
        keywords = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".CodeMirror .cm-keyword, .CodeMirror .cm-type")]
        assert keyword in keywords, (name, keywords)
    select_language("python")
    # Bracket matching: the cursor after a closing bracket marks the pair.
    set_code("print((1 + 2) * 3)\n")
    driver.execute_script("editor.focus(); editor.setCursor({line: 0, ch: 13})")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".CodeMirror-matchingbracket")) == 2)

    # Typed through the keyboard: CodeMirror indents after the colon.
    set_code("")
    driver.find_element(By.CSS_SELECTOR, ".CodeMirror").click()
    driver.find_element(By.CSS_SELECTOR, ".CodeMirror textarea").send_keys(
        "import sys", Keys.ENTER, "for line in sys.stdin:", Keys.ENTER,
        "print(line.strip().upper())")
    typed = driver.execute_script("return editor.getValue()")
    assert typed == "import sys\nfor line in sys.stdin:\n    print(line.strip().upper())", repr(typed)
    driver.find_element(By.ID, "stdin").send_keys("hello\nbrowser")
    run_and_wait()
    assert text("verdict") == "ok", text("verdict")
    assert text("stdout") == "HELLO\nBROWSER", repr(text("stdout"))
    assert "ms wall" in text("time")
    assert text("compile-time") == "", "python has no compile step"
    assert "MiB" in text("memory")
    assert text("status").startswith("Finished")

    # A peak the sandbox could not measure is null in the answer: the page
    # says it is unknown rather than showing 0.0 MiB.
    driver.execute_script(
        "showResult({status: 'SUCCESS', result: {output: 'x'}, verdict: 'ok', stdout: 'x',"
        " stderr: '', wall_time_ms: 5, cpu_time_ms: 3, memory_peak_kib: null, exit_code: 0})")
    memory = text("memory")
    assert "MiB" not in memory and "unknown" in memory, repr(memory)

    # Live output: the first line shows while the program still sleeps.
    set_code('import time\nprint("first", flush=True)\ntime.sleep(2)\nprint("second")\n')
    driver.find_element(By.ID, "stdin").clear()
    driver.find_element(By.ID, "run").click()
    wait.until(lambda d: "first" in text("stdout"))
    assert "second" not in text("stdout"), repr(text("stdout"))
    assert text("verdict") == "", "the output came with the result, not before"
    assert text("status").startswith("Running"), text("status")
    wait.until(lambda d: text("verdict") != "")
    assert text("stdout") == "first\nsecond", repr(text("stdout"))
    assert text("verdict") == "ok"

    # A C program that fails: stderr, verdict and exit code are shown, and
    # the compile time apart from the run time.
    select_language("c")
    set_code('#include <stdio.h>\nint main(void) { fputs("bad\\n", stderr); return 4; }\n')
    run_and_wait()
    assert text("verdict") == "runtime_error", text("verdict")
    assert text("stderr") == "bad"
    assert "exit 4" in text("exit")
    assert text("compile-time").startswith("compile ") and " ms" in text("compile-time"), \
        text("compile-time")
    assert text("time").startswith("run ") and "ms wall" in text("time"), text("time")

    # The API key is a credential: kept for this tab, never on disk.
    driver.find_element(By.ID, "apikey").send_keys("a-key-for-this-tab")
    run_and_wait()
    stored = driver.execute_script(
        "return [sessionStorage.getItem('code-runner.apikey'),"
        " localStorage.getItem('code-runner.apikey')]")
    assert stored == ["a-key-for-this-tab", None], stored
    driver.find_element(By.ID, "apikey").clear()

    # Interactive mode: a guessing game played in the terminal pane.
    select_language("python")
    set_code(
        "secret = 37\n"
        "print('Guess my number (1-100)', flush=True)\n"
        "while True:\n"
        "    guess = int(input('> '))\n"
        "    if guess < secret:\n"
        "        print('higher', flush=True)\n"
        "    elif guess > secret:\n"
        "        print('lower', flush=True)\n"
        "    else:\n"
        "        print('correct!')\n"
        "        break\n")
    driver.find_element(By.ID, "interactive").click()
    assert not driver.find_element(By.ID, "stdin").is_enabled()
    driver.find_element(By.ID, "run").click()
    terminal_input = driver.find_element(By.ID, "terminal-input")
    wait.until(lambda d: "Guess my number" in text("terminal"))
    for guess, answer in (("50", "lower"), ("20", "higher"), ("37", "correct!")):
        seen = text("terminal").count(answer)
        terminal_input.send_keys(guess, Keys.ENTER)
        wait.until(lambda d: text("terminal").count(answer) > seen)
    wait.until(lambda d: text("verdict") != "")
    assert text("verdict") == "ok", (text("verdict"), text("message"))
    terminal = text("terminal")
    assert terminal.startswith("Guess my number (1-100)\n> 50\nlower\n> 20\nhigher\n> 37\ncorrect!"), \
        repr(terminal)
    assert "correct!" in text("stdout")
    wait.until(lambda d: not terminal_input.is_enabled())

    # An input() loop that runs until its input ends: End input ends it.
    set_code("while True:\n    try:\n        line = input()\n    except EOFError:\n"
             "        print('bye')\n        break\n    print(line.upper(), flush=True)\n")
    driver.find_element(By.ID, "run").click()
    wait.until(lambda d: terminal_input.is_enabled())
    for word in ("one", "two"):
        terminal_input.send_keys(word, Keys.ENTER)
        wait.until(lambda d: word.upper() in text("terminal"))
    assert text("verdict") == "", "still running, waiting for input"
    driver.find_element(By.ID, "eof").click()
    wait.until(lambda d: text("verdict") != "")
    assert text("verdict") == "ok", text("verdict")
    assert text("stdout") == "ONE\nTWO\nbye", repr(text("stdout"))

    # Interrupt: SIGINT for a program that would run to its time limit.
    set_code("import time\nprint('looping', flush=True)\nwhile True:\n    time.sleep(0.05)\n")
    driver.find_element(By.ID, "run").click()
    wait.until(lambda d: "looping" in text("terminal"))
    started = time.monotonic()
    driver.find_element(By.ID, "interrupt").click()
    wait.until(lambda d: text("verdict") != "")
    assert time.monotonic() - started < 2.5, "ended by the signal, not the 3 s time limit"
    assert text("verdict") == "runtime_error", text("verdict")
    assert "KeyboardInterrupt" in text("stderr") or "signal 2" in text("exit"), \
        (text("stderr"), text("exit"))
    driver.find_element(By.ID, "interactive").click()
    assert driver.find_element(By.ID, "stdin").is_enabled()

    # Judge mode: two tests in the tests panel, one right and one wrong, for
    # a Python program; the table shows a verdict per test and the summary.
    set_code("print(int(input()) * 2)")
    assert driver.find_element(By.ID, "judge-box").get_attribute("hidden") is not None
    for stdin, expected in (("2", "4"), ("3", "7")):
        driver.find_element(By.ID, "add-test").click()
        row = driver.find_elements(By.CSS_SELECTOR, "#tests .test-row")[-1]
        row.find_element(By.CSS_SELECTOR, ".test-stdin").send_keys(stdin)
        row.find_element(By.CSS_SELECTOR, ".test-expected").send_keys(expected)
    # A row added and removed again is not sent.
    driver.find_element(By.ID, "add-test").click()
    driver.find_elements(By.CSS_SELECTOR, "#tests .test-row")[-1].find_element(
        By.CSS_SELECTOR, "button.remove").click()
    assert len(driver.find_elements(By.CSS_SELECTOR, "#tests .test-row")) == 2
    # The float checker's tolerances show only for it.
    checker = Select(driver.find_element(By.ID, "checker"))
    checker.select_by_value("float")
    assert driver.find_element(By.ID, "checker-abs").is_displayed()
    checker.select_by_value("tokens")
    assert not driver.find_element(By.ID, "checker-abs").is_displayed()
    driver.find_element(By.ID, "run").click()
    wait.until(lambda d: "passed" in text("summary"))
    rows = [[cell.text for cell in tr.find_elements(By.TAG_NAME, "td")]
            for tr in driver.find_elements(By.CSS_SELECTOR, "#judge-rows tr")]
    assert [r[:2] for r in rows] == [["1", "accepted"], ["2", "wrong_answer"]], rows
    assert all(r[2].endswith(" ms") for r in rows), rows
    assert "expected" in rows[1][4], rows
    summary = text("summary")
    assert summary.startswith("1/2 passed"), summary
    assert text("verdict") == "wrong_answer"
    assert "Wrong answer on test 2" in text("message")
    check_page_stayed_local()

    # The Swagger UI renders its operations under the page's policy.
    driver.get(base + "/docs")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 5)
    check_page_stayed_local()

    # The guard itself: a page that reaches for another host is caught.
    driver.get(base + "/")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#language option")) >= 5)
    driver.execute_script(
        "const s = document.createElement('script'); s.src = 'http://example.com/x.js';"
        " document.head.appendChild(s);")
    time.sleep(0.5)
    try:
        check_page_stayed_local()
    except AssertionError:
        pass
    else:
        raise AssertionError("a script from example.com went unnoticed")
    print("playground: ok")
finally:
    driver.quit()
