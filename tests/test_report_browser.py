"""The report in a real headless browser: Debian's chromium driven by Playwright.

The report must open from a file:// URL with no console errors, no network request other
than the file itself, and every figure decoded and drawn. The browser is the system's
(/usr/bin/chromium, installed by tools/install_browser.sh); Playwright never downloads one.
Without playwright or chromium the test is skipped with the reason, except under CI, where
it fails instead: CI must run it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FIGURES = {
    "scope",
    "confusion",
    "pr",
    "roc",
    "calibration",
    "slices",
    "priorities",
    "learning_curve",
}


def _need_browser() -> Any:
    problems = []
    sync_playwright: Any = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problems.append("the playwright package is not installed (pip install playwright)")
    if not CHROMIUM.is_file():
        problems.append(f"{CHROMIUM} is missing (run tools/install_browser.sh)")
    if problems:
        reason = "browser test needs: " + "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set: this test must run, not skip)")
        pytest.skip(reason)
    return sync_playwright


def test_report_opens_in_chromium_offline_with_every_figure(tmp_path: Path) -> None:
    sync_playwright = _need_browser()
    from loopml.discovery import discover
    from loopml.report import build_report
    from test_report import build_full_project

    built = build_full_project(tmp_path / "proj")
    found = discover(built.frame, label="label", prediction="prediction", columns=["region"])
    out = build_report(built.dir, None, tmp_path / "report.html", discovery=found)
    url = out.resolve().as_uri()

    console_errors: list[str] = []
    page_errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "console",
                lambda m: console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            figures = page.eval_on_selector_all(
                "figure[data-figure]",
                """els => els.map(f => {
                    const img = f.querySelector('img');
                    return {name: f.dataset.figure, complete: img.complete,
                            width: img.naturalWidth, height: img.naturalHeight,
                            shown: img.getBoundingClientRect().width};
                })""",
            )
            sections = page.eval_on_selector_all("section[id]", "els => els.map(e => e.id)")
            title = page.title()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()

    assert console_errors == [] and page_errors == []
    # data: URIs are not network requests; the file itself is the only one
    assert [u for u in requests if not u.startswith("data:")] == [url]
    assert {f["name"] for f in figures} == FIGURES
    for f in figures:
        assert f["complete"] and f["width"] > 200 and f["height"] > 150, f
        assert f["shown"] > 100, f
    assert sections[:3] == ["summary", "status", "scope"] and "learning_curve" in sections
    assert title == "loopml report: report-test"
    assert (tmp_path / "report.png").stat().st_size > 50_000
    shots = os.environ.get("LOOPML_SCREENSHOT_DIR")
    if shots:
        import shutil

        shutil.copy(tmp_path / "report.png", Path(shots) / "report.png")
