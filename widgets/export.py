"""``nnrules export``: a zoo model's rules as a static site — HTML pages, PNG pictures and plotly.js, served by
any web server or CDN to any number of readers, with no kernel (issue 43; Voila's docs point to static HTML for
read-only sharing, as Microscope and Neuronpedia serve theirs).

The site: ``index.html`` (the model, the flow as the app draws it — a click on a rule opens its page — and every
rule in a table), one page per drawn rule ``rules/<id>.html`` (the rule in words, its evidence, prototype,
exemplars, heatmaps, where else its units fire; links to the previous and next rule and back), pictures under
``img/`` named by their content (each written once), and ``plotly.min.js`` from the installed plotly (offline).
The pictures come from the disk cache where ``nnrules precompute`` put them, else they are drawn in full here.
Every string from a class, unit or folder name is escaped.
"""
from __future__ import annotations

import hashlib
import html
import json
import os
from pathlib import Path
from typing import Callable

from .flow_figures import sankey_figure
from .state.errors import UserInputError
from .state.explorer import ExplorerState
from .state.types import Detail

__all__ = ["export_site"]

_CSS = """body{font-family:system-ui,sans-serif;margin:16px auto;max-width:1200px;padding:0 12px;color:#222}
img{image-rendering:pixelated;border:1px solid #ddd} figure{display:inline-block;margin:4px;width:136px;
vertical-align:top} figure img{width:128px} figcaption{font-size:11px} table{border-collapse:collapse;font-size:13px}
td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left} pre{white-space:pre-wrap;font-size:12px}
nav a{margin-right:12px} .heat img{width:192px} .heat figure{width:200px}"""


def _page(title: str, body: str, depth: int = 0, head: str = "") -> str:
    up = "../" * depth
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'><style>{_CSS}</style>{head}</head>"
            f"<body><nav><a href='{up}index.html'>All rules</a></nav>{body}"
            f"<p><small>Made by nnrules export: static pages, no server code.</small></p></body></html>")


class _Site:
    """The output folder: pictures written once under ``img/`` by their content's digest."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.pictures = 0

    def picture(self, png: bytes | None, depth: int) -> str:
        if not png:
            return ""
        name = hashlib.blake2b(png, digest_size=12).hexdigest() + ".png"
        path = self.out / "img" / name
        if not path.exists():
            path.write_bytes(png)
            self.pictures += 1
        return "../" * depth + "img/" + name

    def write(self, rel: str, text: str) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _figures(site: _Site, pngs: list[bytes], labels: list[str], depth: int, css: str = "") -> str:
    cells = "".join(f"<figure><img src='{site.picture(p, depth)}' alt='{html.escape(lbl, quote=True)}'>"
                    f"<figcaption>{html.escape(lbl)}</figcaption></figure>" for p, lbl in zip(pngs, labels))
    return f"<div class='{css}'>{cells}</div>"


def _rule_page(site: _Site, d: Detail, rid: int, prev: int | None, nxt: int | None) -> str:
    nav = "".join(f"<a href='{i}.html'>{label}</a>" for i, label in ((prev, "← previous rule"), (nxt, "next rule →"))
                  if i is not None)
    proto = (f"<h3>Prototype</h3><img src='{site.picture(d.prototype, 1)}' alt='prototype' width='160'>"
             if d.prototype else f"<p>{html.escape(d.errors.get('prototype', 'no prototype'))}</p>")
    heat = sorted(d.heatmaps)
    body = (f"<nav>{nav}</nav><h1>{html.escape(d.title)}</h1><pre>{html.escape(d.text)}</pre>{proto}"
            f"<h3>Top exemplars</h3>{_figures(site, d.exemplars, d.exemplar_labels, 1)}"
            f"<h3>Heatmaps</h3>{_figures(site, [d.heatmaps[k] for k in heat], heat, 1, 'heat')}")
    notes = {k: v for k, v in d.errors.items() if k != "prototype"}
    if notes:
        body += "<ul>" + "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in notes.items()) + "</ul>"
    if d.elsewhere:
        body += f"<h3>Where else its units fire</h3>{_figures(site, d.elsewhere, d.elsewhere_labels, 1)}"
    return _page(f"Rule {rid}", body, depth=1)


def export_site(model: str, out: str | os.PathLike, miner: str = "explainn", rules: int = 60,
                say: Callable[[str], None] = print) -> dict:
    """Write the static site of zoo ``model`` mined by ``miner`` with the app's defaults (its stored result when
    there is one) into the new or empty folder ``out``: the index and a page for each of the ``rules`` rules the
    app's flow shows first (see the module text). Returns pages, pictures and bytes written."""
    import plotly.offline

    if isinstance(rules, bool) or not isinstance(rules, int) or rules < 1:
        raise UserInputError(f"rules must be a positive number of rules, got {rules!r}")
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserInputError(f"the output folder {str(target)!r} exists and is not empty: choose a new folder "
                             "(nothing is overwritten)")
    try:
        (target / "img").mkdir(parents=True, exist_ok=True)
        probe = target / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserInputError(f"cannot write into {str(target)!r}: {err.strerror or err}; choose a folder you "
                             "can write to") from None
    s = ExplorerState()
    s.load_zoo(model)
    s.mine(s.default_settings(miner), stored=True)
    if s.flow is None or s.rules.empty:
        raise UserInputError(f"{miner} found no rules on {model} with the app's defaults: nothing to export")
    site = _Site(target)
    (target / "plotly.min.js").write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
    fig, rule_ids, _ = sankey_figure(s, max_rules=rules)  # the rules the app's flow shows first get pages
    top = list(dict.fromkeys(int(i) for i in rule_ids if i is not None))
    for n, rid in enumerate(top):
        s.select_rule(rid)
        d = s.chosen.detail(full=True)
        site.write(f"rules/{rid}.html", _rule_page(site, d, rid, top[n - 1] if n else None,
                                                   top[n + 1] if n + 1 < len(top) else None))
        if (n + 1) % 10 == 0:
            say(f"  {n + 1} of {len(top)} rule pages")
    fig.update_layout(width=None, autosize=True)
    pages = [f"rules/{i}.html" if i is not None else "" for i in rule_ids]
    flow = json.dumps(fig.to_plotly_json(), default=str)
    script = (f"<div id='flow'></div><script>const fig={flow};const pages={json.dumps(pages)};"
              "Plotly.newPlot('flow',fig.data,fig.layout,{responsive:true}).then(g=>g.on('plotly_click',e=>{"
              "const p=e.points&&e.points[0];if(p&&p.source!==undefined&&pages[p.index])window.location=pages[p.index];"
              "}));</script>")
    rows = "".join(f"<tr><td><a href='rules/{i}.html'>{i}</a></td><td>{html.escape(str(r['words']))}</td>"
                   f"<td>{int(r['support'])}</td><td>{float(r['confidence']):.2f}</td>"
                   f"<td>{html.escape(str(r.get('evidence') or ''))}</td></tr>"
                   for i, r in s.rules.set_index("id").loc[top].iterrows())
    summary = (f"<h1>{html.escape(s.model_name)}: {len(s.rules)} rules ({html.escape(miner)}, the app's defaults)"
               f"</h1><p>{html.escape(s.info)}</p><p>The flow below draws {len(top)} rules, as the app does first; click "
               "a link of it, or a rule below, to open its page.</p>")
    table = ("<table><tr><th>rule</th><th>in words</th><th>support</th><th>confidence</th><th>evidence</th></tr>"
             f"{rows}</table>")
    site.write("index.html", _page(s.model_name, summary + script + table,
                                   head="<script src='plotly.min.js'></script>"))
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    say(f"wrote {len(top) + 1} pages and {site.pictures} pictures into {target} ({size / 2**20:.1f} MB): serve it "
        f"with any web server, e.g. python -m http.server --directory {target}")
    return {"pages": len(top) + 1, "pictures": site.pictures, "bytes": size}
