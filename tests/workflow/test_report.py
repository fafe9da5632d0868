"""Snakemake's HTML report of a run, opened in a real browser (headless Chromium)."""

from __future__ import annotations

import base64
import shutil
import tempfile
import time

import pytest
from helpers import ROOT, snakemake

CHROMIUM = shutil.which("chromium")


CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Chromium is not installed (Debian packages chromium and chromium-driver; .ci/run installs them)")


CATEGORIES = {
    "1. Scores": ["results/scores.csv", "results/scores.html", "results/plots/heatmap.png",
                  "results/plots/ranking.png"],
    "2. Validation": ["results/validation/agreement.csv", "results/validation/pairs.csv",
                      "results/validation/agreement.html", "results/validation/scatter.png",
                      "results/validation/cost.png"],
}


CAPTIONS = {"scores.csv": "scores.rst", "scores.html": "scores_html.rst", "heatmap.png": "heatmap.rst",
            "ranking.png": "ranking.rst", "agreement.csv": "agreement.rst",
            "pairs.csv": "pairs.rst", "agreement.html": "agreement_html.rst",
            "scatter.png": "scatter.rst", "cost.png": "cost.rst"}


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(10)
    yield driver
    driver.quit()


def _click(browser, element, timeout=10.0):
    """Click once the element can take the click: scrolled into view, enabled, and nothing drawn
    on top of it (the report animates its panels: a click during that lands on another element)."""
    from selenium.common.exceptions import ElementClickInterceptedException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    deadline = time.time() + timeout
    while True:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", element)
        WebDriverWait(browser, timeout).until(expected_conditions.element_to_be_clickable(element))
        try:
            element.click()
            return
        except ElementClickInterceptedException:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def _open_category(browser, url, category):
    from selenium.webdriver.common.by import By

    browser.get(url)
    _click(browser, browser.find_element(By.XPATH, f"//*[normalize-space(text())='{category}']"))


def _row(browser, path):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.XPATH, f"//tr[td[normalize-space(text())='{path}']]")


def _settled(read, ok, timeout=10.0):
    """What `read()` gives once `ok` holds for it (or at the timeout): the page renders asynchronously."""
    deadline = time.time() + timeout
    value = read()
    while not ok(value) and time.time() < deadline:
        time.sleep(0.2)
        value = read()
    return value


def _click_until(browser, element, ready, tries=3):
    """Click until `ready()` is truthy. A click that lands before the report's script has bound
    its handler follows the plain link instead (a new window); close that and click again."""
    main = browser.current_window_handle
    browser.implicitly_wait(0)
    try:
        for _ in range(tries):
            _click(browser, element)
            for handle in set(browser.window_handles) - {main}:
                browser.switch_to.window(handle)
                browser.close()
            browser.switch_to.window(main)
            result = _settled(ready, bool, timeout=4)
            if result:
                return result
        return result
    finally:
        browser.implicitly_wait(10)


def _page_text(browser):
    from selenium.webdriver.common.by import By

    return " ".join(browser.find_element(By.TAG_NAME, "body").text.split())


def _first_line(caption_file):
    return " ".join((ROOT / "report" / caption_file).read_text().split())[:60]


def test_report_shows_every_table_and_plot_with_its_caption(pipeline, browser):
    from selenium.webdriver.common.by import By

    snakemake(pipeline, "--report", "results/report.html")
    url = (pipeline / "results/report.html").as_uri()
    for category, paths in CATEGORIES.items():
        for path in paths:
            name = path.rsplit("/", 1)[-1]
            _open_category(browser, url, category)
            eye = _row(browser, path).find_element(By.CSS_SELECTOR, "a[iconname='eye']")
            if name.endswith(".csv"):  # offered as the file itself
                header = base64.b64decode(eye.get_attribute("href").split("base64,", 1)[1]).decode()
                assert header.splitlines()[0] == (pipeline / path).read_text().splitlines()[0]
            else:
                selector = f"img[src*='filename={name}']" if name.endswith(".png") else "iframe"
                shown = _click_until(browser, eye, lambda: browser.find_elements(By.CSS_SELECTOR, selector))
                assert shown, f"{name} is not shown"
                if name.endswith(".png"):
                    img = shown[0]
                    width = _settled(lambda: browser.execute_script("return arguments[0].naturalWidth", img),
                                     lambda w: w > 0)
                    assert width > 0 and img.is_displayed(), f"{name} did not render"
                else:
                    expected = "pairwise_accuracy" if name == "agreement.html" else "extra_urllib"
                    browser.switch_to.frame(shown[0])
                    headers = _settled(lambda: [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table th")],
                                       lambda found: expected in found)
                    rows = browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
                    browser.switch_to.default_content()
                    assert expected in headers and len(rows) >= 4, (name, headers)
            _open_category(browser, url, category)
            info = _row(browser, path).find_element(By.CSS_SELECTOR, "a[iconname='information-circle']")
            caption = _first_line(CAPTIONS[name]).replace("``", "")
            assert _click_until(browser, info, lambda: caption in _page_text(browser)), name


def test_the_report_opens_on_the_answers(pipeline, browser):
    import pandas as pd
    from selenium.webdriver.common.by import By

    if not (pipeline / "results/report.html").exists():
        snakemake(pipeline, "--report", "results/report.html")
    browser.get((pipeline / "results/report.html").as_uri())
    rows = _settled(lambda: browser.find_elements(By.CSS_SELECTOR, "table.summary tr"), lambda found: len(found) > 1)
    summary = pd.read_csv(pipeline / "results/summary.csv")
    assert len(rows) == 1 + len(summary)  # the header, then one row per eval set and search target
    text = _page_text(browser)
    assert text.index("Answers") < text.index("How it works")
    first = rows[1].find_elements(By.TAG_NAME, "td")
    assert first[0].text == summary["answer_for"].iloc[0] and first[-1].text == summary["trust"].iloc[0]
    assert first[1].get_attribute("title") in ("", None, summary["best_mixture"].iloc[0])
