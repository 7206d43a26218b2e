"""The web playground in a real browser: Debian's headless Chromium, driven
by Selenium through Debian's chromedriver (no driver download).

Usage: python playground.py http://127.0.0.1:PORT
Loads the page, picks Python, types a program (through the keyboard, so the
textarea's Tab handling is exercised), gives it stdin, clicks Run and waits
for its output, verdict, time and memory (and shows an unknown peak memory,
`null`, as unknown); then runs a failing C program; then judges a Python program on two tests
added in the tests panel (one accepted, one wrong answer). Then opens the Swagger
UI at /docs. Both pages are served with a strict Content-Security-Policy
(no inline script or style): the browser must log no violation of it, and
the API key typed in the playground is kept in sessionStorage only.
"""

import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

base = sys.argv[1].rstrip("/")
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
             "--window-size=1280,900"):
    options.add_argument(flag)
# The console, to see Content-Security-Policy violations.
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    wait = WebDriverWait(driver, 60)
    driver.get(base + "/")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#language option")) >= 5)
    Select(driver.find_element(By.ID, "language")).select_by_value("python")
    code = driver.find_element(By.ID, "code")
    assert "Hello" in code.get_attribute("value"), "no starter program"

    code.clear()
    # Enter keeps the indentation; Tab inserts four spaces.
    code.send_keys("import sys", Keys.ENTER, "for line in sys.stdin:", Keys.ENTER,
                   Keys.TAB, "print(line.strip().upper())")
    typed = code.get_attribute("value")
    assert typed == "import sys\nfor line in sys.stdin:\n    print(line.strip().upper())", repr(typed)
    driver.find_element(By.ID, "stdin").send_keys("hello\nbrowser")
    driver.find_element(By.ID, "run").click()

    wait.until(lambda d: d.find_element(By.ID, "verdict").text != "")
    stdout = driver.find_element(By.ID, "stdout").text
    verdict = driver.find_element(By.ID, "verdict").text
    assert verdict == "ok", verdict
    assert stdout == "HELLO\nBROWSER", repr(stdout)
    assert "ms wall" in driver.find_element(By.ID, "time").text
    assert "MiB" in driver.find_element(By.ID, "memory").text
    assert driver.find_element(By.ID, "status").text.startswith("Finished")

    # A peak the sandbox could not measure is null in the answer: the page
    # says it is unknown rather than showing 0.0 MiB.
    driver.execute_script(
        "showResult({status: 'SUCCESS', result: {output: 'x'}, verdict: 'ok', stdout: 'x',"
        " stderr: '', wall_time_ms: 5, cpu_time_ms: 3, memory_peak_kib: null, exit_code: 0})")
    memory = driver.find_element(By.ID, "memory").text
    assert "MiB" not in memory and "unknown" in memory, repr(memory)

    # A C program that fails: stderr, verdict and exit code are shown.
    Select(driver.find_element(By.ID, "language")).select_by_value("c")
    code.clear()
    code.send_keys('#include <stdio.h>\nint main(void) { fputs("bad\\n", stderr); return 4; }\n')
    driver.find_element(By.ID, "stdin").clear()
    driver.find_element(By.ID, "run").click()
    wait.until(lambda d: d.find_element(By.ID, "verdict").text not in ("", "ok"))
    assert driver.find_element(By.ID, "verdict").text == "runtime_error"
    assert driver.find_element(By.ID, "stderr").text == "bad"
    assert "exit 4" in driver.find_element(By.ID, "exit").text

    # The API key is a credential: kept for this tab, never on disk.
    driver.find_element(By.ID, "apikey").send_keys("a-key-for-this-tab")
    driver.find_element(By.ID, "run").click()
    wait.until(lambda d: d.find_element(By.ID, "verdict").text != "")
    stored = driver.execute_script(
        "return [sessionStorage.getItem('code-runner.apikey'),"
        " localStorage.getItem('code-runner.apikey')]")
    assert stored == ["a-key-for-this-tab", None], stored

    # Judge mode: two tests in the tests panel, one right and one wrong, for
    # a Python program; the table shows a verdict per test and the summary.
    driver.find_element(By.ID, "apikey").clear()
    Select(driver.find_element(By.ID, "language")).select_by_value("python")
    code.clear()
    code.send_keys("print(int(input()) * 2)")
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
    wait.until(lambda d: "passed" in d.find_element(By.ID, "summary").text)
    rows = [[cell.text for cell in tr.find_elements(By.TAG_NAME, "td")]
            for tr in driver.find_elements(By.CSS_SELECTOR, "#judge-rows tr")]
    assert [r[:2] for r in rows] == [["1", "accepted"], ["2", "wrong_answer"]], rows
    assert all(r[2].endswith(" ms") for r in rows), rows
    assert "expected" in rows[1][4], rows
    summary = driver.find_element(By.ID, "summary").text
    assert summary.startswith("1/2 passed"), summary
    assert driver.find_element(By.ID, "verdict").text == "wrong_answer"
    assert "Wrong answer on test 2" in driver.find_element(By.ID, "message").text

    # The Swagger UI renders its operations under the page's policy.
    driver.get(base + "/docs")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 5)
    policy = [entry["message"] for entry in driver.get_log("browser")
              if "Content Security Policy" in entry["message"]]
    assert not policy, policy
    print("playground: ok")
finally:
    driver.quit()
