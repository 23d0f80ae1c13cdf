"""A page in a real browser: Debian's headless Chromium driven by selenium through Debian's chromedriver
(nothing downloads a browser). ``page_problems(path)`` opens a local HTML file and says what a reader would
miss: an image that did not load (natural width 0), an error the page logged.

Where Chromium or selenium is missing the tests that use it skip, saying why; with ``CI=true`` (``.ci/run``)
they fail instead, as the SLURM tests do with RNN_STUDY_REQUIRE_SLURM.
"""

import os
import shutil
import time

import pytest

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"


def _missing():
    if not any(shutil.which(b) for b in CHROMIUM) or not (shutil.which(DRIVER) or os.path.exists(
            "/usr/bin/chromedriver")):
        return "no Chromium or chromedriver (Debian: apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return ""


def require_browser():
    """Skip (fail under CI=true) when no browser can be driven here."""
    why = _missing()
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must open the report in a browser: {why}")
        pytest.skip(why)


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(b) for b in CHROMIUM if shutil.which(b))
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--allow-file-access-from-files", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which(DRIVER) or "/usr/bin/chromedriver"), options=options)


IMAGES = """
const imgs = Array.from(document.images);
return imgs.map(i => [i.getAttribute('src').slice(0, 80), i.complete, i.naturalWidth]);
"""


def page_problems(path, *, min_images=1, settle=10.0, reveal=None):
    """Open ``path`` (an HTML file) in headless Chromium; return what a reader would miss, as sentences.

    ``reveal``: JavaScript run once the page has loaded, returning nothing, that makes the page show its
    figures (a report that shows one result at a time); the page is then read again."""
    require_browser()
    driver = _driver()
    try:
        driver.get(path.resolve().as_uri())
        deadline = time.time() + settle
        while driver.execute_script("return document.readyState") != "complete" and time.time() < deadline:
            time.sleep(0.1)
        if reveal:
            driver.execute_script(reveal)
        images = []
        while time.time() < deadline:  # images decode asynchronously
            images = driver.execute_script(IMAGES)
            if images and all(done for _, done, _ in images):
                break
            time.sleep(0.2)
        problems = [f"image did not load: {src}" for src, done, width in images if not done or width == 0]
        if len(images) < min_images:
            problems.append(f"{len(images)} images on the page, expected at least {min_images}")
        problems += [f"the page logged: {entry['message']}" for entry in driver.get_log("browser")
                     if entry["level"] == "SEVERE"]
        return problems
    finally:
        driver.quit()


# Snakemake's report shows one result at a time from its ``results`` table ({path: {mime_type, data_uri, …}}):
# put every image result on the page, as a reader clicking through them would see each.
REPORT_FIGURES = """
Object.values(results).filter(r => r.mime_type.startsWith('image/')).forEach(r => {
  const img = new Image(); img.src = r.data_uri; document.body.appendChild(img); });
"""
