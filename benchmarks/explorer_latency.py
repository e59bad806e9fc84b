"""The explorer as a visitor meets it: Voila serving notebooks/explorer.ipynb, Chromium via Playwright.

Measures, on one run: (1) a fresh page load — seconds until the app is drawn (with the model still loading
in the background: its progress line visible) and until the model is ready; (2) a click made while a
cifar10-cnn rule's pictures compute — when the click's effect is drawn vs when the pictures are done
(both relative to the detail starting; the click must come first).

Run: .venv/bin/python benchmarks/explorer_latency.py
"""
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_browser import ORDER_PROBE, _serve  # noqa: E402  (the same server and probe as the browser test)


def main():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    log = Path("/tmp/nnrules-latency-voila.log")
    serve = _serve(log)
    url, _ = next(serve)
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            for visit in (1, 2):
                pg = b.new_page(viewport={"width": 1500, "height": 1900})
                t0 = time.perf_counter()
                pg.goto(url, timeout=180_000)
                pg.wait_for_selector(".nnr-app", timeout=180_000)
                t_app = time.perf_counter() - t0
                loading = "loading" in (pg.locator(".nnr-model-msg").text_content() or "")
                pg.wait_for_selector(".nnr-model-summary", timeout=600_000)
                t_model = time.perf_counter() - t0
                print(f"page load {visit}: app drawn after {t_app:.1f} s (model still loading, progress shown: "
                      f"{loading}), model ready after {t_model:.1f} s")
                if visit == 2:
                    pg.select_option(".nnr-model-input select", "cifar10-cnn")
                    pg.click(".nnr-load")
                    pg.wait_for_function("document.querySelector('.nnr-model-summary').textContent"
                                         ".includes('cifar10-cnn')", timeout=180_000)
                    pg.click(".nnr-mine")
                    pg.wait_for_selector(".nnr-sankey .sankey-link", timeout=180_000)
                    pg.evaluate(ORDER_PROBE)
                    pg.select_option(".nnr-rule-choice select",
                                     pg.locator(".nnr-rule-choice select option").nth(1).get_attribute("value"))
                    pg.wait_for_function("window.__t.started !== undefined", timeout=30_000)
                    pg.select_option(".nnr-focus select",
                                     pg.locator(".nnr-focus select option").nth(4).get_attribute("value"))
                    pg.wait_for_function("window.__t.focus !== undefined && window.__t.done !== undefined",
                                         timeout=180_000)
                    t = pg.evaluate("window.__t")
                    print(f"click during a cifar10-cnn detail: its effect drawn {(t['focus'] - t['started']) / 1e3:.2f} s "
                          f"after the detail started, the detail done after {(t['done'] - t['started']) / 1e3:.2f} s "
                          f"({'click first' if t['focus'] < t['done'] else 'DETAIL FIRST'})")
                pg.close()
            b.close()
    finally:
        serve.close()


if __name__ == "__main__":
    main()
