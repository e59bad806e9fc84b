"""The explorer as a visitor meets it: Voila serving notebooks/explorer.ipynb, Chromium via Playwright.

Measures, on one run: (1) page loads — seconds after navigation until the start-up bar is drawn, the app
is drawn, the model's loading progress (training epochs) is shown and the model is ready: first on a fresh
machine (an empty weights cache: digits-cnn trains), then with the weights cached; (2) a click made while a
cifar10-cnn rule's pictures compute — when the click's effect is drawn vs when the pictures are done
(both relative to the detail starting; the click must come first). Times are recorded in the page
(``performance.now()`` as each first appears), the same probes as the browser tests. (3) Headless, the
time from a click (select a rule) to its whole detail on cifar10-cnn with the app's defaults: the first time
(computed), the second (the page's memory), and on a fresh page after ``nnrules precompute`` (read from the
disk cache) — goal (#31): ≤ 1 s once cached or precomputed, on 2 cores.

Run: .venv/bin/python benchmarks/explorer_latency.py [detail]   (``detail``: part 3 only, no browser)
"""
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_browser import LOAD_PROBE, ORDER_PROBE, _serve  # noqa: E402  (the same server and probe as the browser test)


def detail_latency(model: str = "cifar10-cnn", rules: int = 5) -> None:
    """Seconds from selecting a rule to its whole detail: computed, from memory, precomputed (disk)."""
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from widgets.picture_cache import PictureCache
    from widgets.precompute import precompute
    from widgets.state import ExplorerState

    folder = tempfile.mkdtemp(prefix="nnrules-pictures-")
    try:
        def page(pictures):
            s = ExplorerState(pictures=pictures)
            s.load_zoo(model)
            s.mine(s.default_settings("explainn"))
            return s

        def click(s, rid):
            t = time.perf_counter()
            s.select_rule(rid)
            s.detail()
            return time.perf_counter() - t

        cold = page(None)  # no disk cache: every picture computed
        ids = [int(r) for r in cold.rules.nlargest(rules, "support")["id"]]
        first = [click(cold, r) for r in ids]
        second = [click(cold, r) for r in ids]
        pre = precompute(model, "explainn", rules, PictureCache(folder), say=lambda _: None)
        warm = page(PictureCache(folder))  # a fresh page: nothing in memory
        disk = [click(warm, r) for r in ids]
        fmt = lambda xs: f"median {sorted(xs)[len(xs) // 2]:.2f} s, max {max(xs):.2f} s"  # noqa: E731
        print(f"{model}, {len(ids)} top rules, click → whole detail: first {fmt(first)}; again (memory) "
              f"{fmt(second)}; fresh page after precompute (disk) {fmt(disk)}; precompute took "
              f"{pre['seconds']:.0f} s for {pre['rules']} rules and {pre['groups']} groups")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main():
    detail_latency()
    if sys.argv[1:] == ["detail"]:
        return
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    log = Path("/tmp/nnrules-latency-voila.log")
    cache = tempfile.mkdtemp(prefix="nnrules-cache-")  # visit 1 finds no weights: digits-cnn trains
    serve = _serve(log, env=dict(os.environ, NNRULES_CACHE=cache))
    url, _ = next(serve)
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            for visit in (1, 2):
                pg = b.new_page(viewport={"width": 1500, "height": 1900})
                pg.add_init_script(LOAD_PROBE)
                pg.goto(url, timeout=180_000)
                pg.wait_for_selector(".nnr-model-summary", timeout=600_000)
                t = {k: v / 1e3 for k, v in pg.evaluate("window.__load").items()}
                fmt = lambda k: f"{t[k]:.1f} s" if k in t else "never"  # noqa: E731
                print(f"page load {visit} ({'empty weights cache: digits-cnn trains' if visit == 1 else 'weights cached'}): "
                      f"start-up bar {fmt('starting')}, app {fmt('app')}, loading progress {fmt('progress')}, "
                      f"first epoch {fmt('epoch')}, model ready {fmt('ready')}")
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
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
