"""Drives headless chromium over the dashboard pages that dashboard_browser.sh started.

--live: the running run's own page (output.dashboard). Its loss chart holds the run's
points, and each step appended to metrics.jsonl shows on the chart within 2 s of the
line's "time" (written just before the line).
--both: `lathe dashboard FINISHED RUNNING`: the loss chart overlays the two runs, named by
their folders, the differing learning rate is shown, and the finished run's eval samples
are listed. Every request the page made went to its own server.
"""
import argparse
import json
import os
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

LATENCY_LIMIT_S = 2.0
STEPS_TIMED = 5


def browser(chromium, chromedriver):
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1100"):
        opts.add_argument(a)
    # Debian's chromedriver, named: Selenium would otherwise try to download one.
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)


def wait_for(what, fn, timeout=30.0, every=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def chart(driver, key):
    """The chart's labels and, per series, how many points it has and the last step."""
    return driver.execute_script("""
        const g = window.dashboard && window.dashboard.charts[arguments[0]];
        if (!g || !document.getElementById('chart-' + arguments[0])) return null;
        const labels = g.getLabels(), n = g.numRows(), out = {labels, points: [], last: []};
        for (let c = 1; c < labels.length; ++c) {
          let k = 0, last = null;
          for (let r = 0; r < n; ++r) if (g.getValue(r, c) !== null) ++k, last = g.getValue(r, 0);
          out.points.push(k); out.last.push(last);
        }
        return out;""", key)


def full_page_screenshot(driver, path):
    """The whole page, top to bottom: the window made as tall as the page first."""
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(height + 100, 4000))
    time.sleep(0.3)  # the charts resize to the new window
    driver.save_screenshot(path)
    driver.set_window_size(1400, 1100)


def last_step(path):
    step, t = 0, 0.0
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                j = json.loads(line)
                if "loss" in j:
                    step, t = j["step"], j["time"]
    return step, t


def check_live(driver, url, run_dir, shots):
    driver.get(url)
    name = os.path.basename(run_dir)
    c = wait_for("the loss chart with the run's points", lambda: (lambda c: c if c and c["points"][0] > 0 else None)(chart(driver, "loss")))
    assert c["labels"] == ["step", name], c["labels"]
    latencies = []
    metrics = os.path.join(run_dir, "metrics.jsonl")
    seen, _ = last_step(metrics)
    while len(latencies) < STEPS_TIMED:
        # The next step line written to metrics.jsonl, then the chart showing it.
        step, written = wait_for("a new step in metrics.jsonl",
                                 lambda: (lambda s: s if s[0] > seen else None)(last_step(metrics)))
        wait_for(f"step {step} on the chart", lambda: (chart(driver, "loss")["last"][0] or 0) >= step,
                 timeout=10, every=0.02)
        latencies.append(time.time() - written)
        seen = step
    progress = driver.find_element(By.CSS_SELECTOR, "#run-0 .progress").text
    assert "/ 100000" in progress, progress
    full_page_screenshot(driver, os.path.join(shots, "dashboard_live.png"))
    print("live: new steps on the chart " + ", ".join(f"{x:.2f}" for x in latencies) +
          f" s after their metrics.jsonl line (limit {LATENCY_LIMIT_S} s); progress '{progress}'")
    assert max(latencies) < LATENCY_LIMIT_S, latencies


def check_both(driver, url, finished, running, shots):
    driver.get(url)
    names = [os.path.basename(finished), os.path.basename(running)]
    c = wait_for("the loss chart with both runs",
                 lambda: (lambda c: c if c and len(c["points"]) == 2 and min(c["points"]) > 0 else None)(
                     chart(driver, "loss")))
    assert c["labels"] == ["step"] + names, c["labels"]
    assert c["points"][0] == 6, c  # the finished run's 6 steps
    for key in ("lr", "grad_norm", "eval_loss", "tokens_per_s"):
        k = wait_for(f"the {key} chart", lambda: chart(driver, key))
        assert k["labels"] == ["step"] + names, (key, k["labels"])
    differs = driver.find_element(By.CSS_SELECTOR, "#run-0 .differs").text
    assert "train.lr=" in differs, differs
    state = driver.find_element(By.CSS_SELECTOR, "#run-0").text
    assert "finished" in state, state
    # The finished run's samples (samples/final.jsonl, 3 rows), opened as a user would.
    def summary(prefix):
        return wait_for(f"'{prefix}'", lambda: [s for s in driver.find_elements(By.TAG_NAME, "summary")
                                                 if s.text.startswith(prefix)])[0]
    summary("eval samples (1 files)").click()
    inner = summary("final.jsonl")
    inner.click()
    assert "3 rows" in inner.text, inner.text
    rows = driver.find_elements(By.CSS_SELECTOR, "table.samples tr")
    assert len(rows) == 4, [r.text for r in rows]  # the header and 3 samples
    # Nothing from outside: every resource the page loaded came from this server.
    origins = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
    assert origins and all(o == url.rstrip("/") for o in origins), set(origins)
    time.sleep(1.5)  # one more poll, so the running run's newest steps are in the picture
    full_page_screenshot(driver, os.path.join(shots, "dashboard.png"))
    print(f"both: loss chart overlays {names} ({c['points']} points), config differs: "
          f"{differs}; {len(origins)} requests, all to {url}")


def main():
    ap = argparse.ArgumentParser()
    for a in ("chromium", "chromedriver", "live", "both", "running", "finished", "screenshots"):
        ap.add_argument("--" + a, required=True)
    a = ap.parse_args()
    driver = browser(a.chromium, a.chromedriver)
    try:
        check_live(driver, a.live, a.running, a.screenshots)
        check_both(driver, a.both, a.finished, a.running, a.screenshots)
    finally:
        driver.quit()
    print(f"screenshots: {a.screenshots}/dashboard.png, {a.screenshots}/dashboard_live.png")


if __name__ == "__main__":
    main()
