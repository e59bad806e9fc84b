"""The explorer's flow views on cifar10-cnn's ExplaiNN result (the app's default chain relu8 → relu7): how many
rules, how many a class "owns", and what focus mode shows. Writes docs/sankey-cifar10-top.png,
docs/sankey-cifar10-focus.png and docs/sankey-cifar10-other.png (top 30 by gain, the rest as "other"):
plotly figures rendered by Chromium, as the app draws them.

Run: .venv/bin/python benchmarks/explorer_views.py [class name, default cat]
"""
import shutil
import sys
import tempfile
import time
from pathlib import Path

from nnrules.widgets import ExplorerState, MiningSettings
from nnrules.widgets.views import BY_GAIN, OTHER, sankey_figure

DOCS = Path(__file__).resolve().parents[1] / "docs"


def render(fig, path: Path, width: int = 1100) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "fig.html"
        fig.update_layout(width=width)
        fig.write_html(html, include_plotlyjs=True, full_html=True)
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = b.new_page(viewport={"width": width + 20, "height": int(fig.layout.height) + 20})
            page.goto(html.as_uri())
            page.wait_for_selector(".sankey-node")
            page.locator(".js-plotly-plot").screenshot(path=str(path))
            b.close()


def main():
    cls = sys.argv[1] if len(sys.argv) > 1 else "cat"
    s = ExplorerState()
    s.load_zoo("cifar10-cnn")
    t = time.perf_counter()
    s.mine(MiningSettings(["relu8", "relu7"]))
    print(f"cifar10-cnn, ExplaiNN on relu8 → relu7: {len(s.rules)} rules in {time.perf_counter() - t:.1f} s")
    owns = {c: int(s.rules["classes"].map(lambda k: c in k).sum()) for c in s.class_names}
    print("rules descending from each class (the class filter):", owns)
    top, _, _ = sankey_figure(s, 60)
    focus, rule_ids, node_ids = sankey_figure(s, 30, focus=cls)
    print(f"top 60 by support: {len(top.data[0].node.x)} groups; class {cls}'s chain: {len(set(rule_ids))} rules, "
          f"{len(node_ids)} groups")
    other, rule_ids, node_ids = sankey_figure(s, 30, focus=BY_GAIN)
    flow = other.data[0].link.value
    shown = sum(v for v, i in zip(flow, rule_ids) if i != OTHER)
    total = float(s.links["value"].sum())
    print(f"top 30 by gain: {len(set(rule_ids) - {OTHER})} rules, {len(node_ids)} groups; the rules left out carry "
          f"{1 - shown / total:.0%} of the flow (their 'other' links drawn at most half as wide as the shown ones)")
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        for fig, name in ((top, "top"), (focus, "focus"), (other, "other")):
            render(fig, DOCS / f"sankey-cifar10-{name}.png")
            print(f"wrote {DOCS / f'sankey-cifar10-{name}.png'}")


if __name__ == "__main__":
    main()
