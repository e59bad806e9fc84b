"""``nnrules export`` (issue 43): a zoo model's rules as a static site, opened from a plain HTTP server in
Chromium with no kernel — every page of a sample opens with no console error, every picture is there, the links
between pages (table, previous/next, a click on the flow) work; bad output folders are refused in words."""
import functools
import http.server
import shutil
import threading

import pytest

from nnrules.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module", params=["digits-cnn", "fashion-cnn"])
def site(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / request.param
    assert main(["export", "--model", request.param, "--rules", "12", "--out", str(out)]) == 0
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test's output, not the server's access log
        pass


def test_export_refuses_a_non_empty_or_unwritable_folder_and_says_its_size(site, tmp_path, capsys):
    assert (site / "index.html").is_file() and (site / "plotly.min.js").is_file()
    pages = sorted((site / "rules").glob("*.html"))
    assert len(pages) == 12 and len(list((site / "img").glob("*.png"))) > 12
    assert main(["export", "--model", "digits-cnn", "--out", str(site)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["export", "--model", "digits-cnn", "--out", str(tmp_path / "file" / "site")]) == 2
    assert "cannot write into" in capsys.readouterr().err
    assert main(["export", "--model", "digits-cnn", "--rules", "0", "--out", str(tmp_path / "new")]) == 2


def test_export_prints_the_folder_size(tmp_path, capsys):
    assert main(["export", "--model", "fashion-cnn", "--rules", "3", "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "wrote 4 pages and" in out and " MB)" in out and "python -m http.server" in out


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_every_page_of_the_static_site_opens_without_a_kernel(site):
    from playwright.sync_api import sync_playwright

    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors, failed = [], []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(base + "index.html")
            page.wait_for_selector("#flow svg.main-svg", timeout=30_000)
            assert page.locator("#flow .sankey-link").count() > 5
            hrefs = page.eval_on_selector_all("table a", "es => es.map(e => e.getAttribute('href'))")
            assert len(hrefs) == 12
            for href in hrefs[:4] + hrefs[-2:]:  # a sample of the pages, each from the table's link
                page.goto(base + "index.html")
                page.click(f"table a[href='{href}']")
                page.wait_for_url(base + href)
                images = page.eval_on_selector_all("img", "es => es.map(e => [e.complete, e.naturalWidth])")
                assert images and all(done and w > 0 for done, w in images), (href, images)
                assert page.locator("h1").inner_text().strip()
            page.click("text=← previous rule")  # the last page sampled: previous works, and back to all rules
            page.wait_for_url(base + hrefs[-2])
            page.click("text=next rule →")
            page.wait_for_url(base + hrefs[-1])
            page.click("text=All rules")
            page.wait_for_url(base + "index.html")
            page.wait_for_selector("#flow .sankey-link", timeout=30_000)
            first = page.evaluate("pages.findIndex(p => p)")  # the flow's first link that is a rule
            # a rule of the flow opens its page (the event on the link itself: a curve's box centre may be elsewhere)
            page.locator("#flow .sankey-link").nth(first).dispatch_event("click")
            page.wait_for_url(base + "rules/*.html", timeout=10_000)
            assert errors == [] and failed == [], (errors, failed)
            browser.close()
    finally:
        server.shutdown()
