"""Small helpers shared by the panels: messages, PNG images, HTML escaping."""
from __future__ import annotations

import base64
import copy
import html

import ipywidgets as W

COLORS = {"error": "#b00020", "info": "#1f5f8b", "ok": "#2e7d32"}


def message(widget: W.HTML, text: str = "", kind: str = "info") -> None:
    """Show ``text`` in a panel's message line (``kind``: error, info, ok); empty text clears it."""
    if not text:
        widget.value = ""
        return
    body = html.escape(text).replace("\n", "<br>")
    widget.value = f'<div class="nnr-msg nnr-{kind}" style="color:{COLORS[kind]}">{body}</div>'


def image(png: bytes | None, css: str, width: str | None = None) -> W.Image:
    img = W.Image(value=png or b"", format="png")
    img.add_class(css)
    if width:
        img.layout.width = width
    return img


def download_link(text: str, filename: str, mime: str, label: str) -> str:
    """An HTML link that saves ``text`` as ``filename`` (a data: URI; works in Jupyter and Voila)."""
    data = base64.b64encode(text.encode()).decode()
    return (f'<a class="nnr-download" download="{html.escape(filename)}" '
            f'href="data:{mime};base64,{data}">{html.escape(label)}</a>')


def keep_state(fig) -> None:
    """Keep a ``FigureWidget``'s synced state current. plotly sends a figure's later changes as deltas to the
    pages connected *then*, and its whole state (``_widget_data``, ``_widget_layout``) only when it is created or
    displayed: a page whose widget manager connects after a redraw builds the figure from that old state. Part
    of issue 43's room (8 pages at once on 2 cores: every kernel mined, most pages kept an empty axis grid); it
    does not fix views that were being created while the deltas went by (still open). Called after each redraw."""
    fig._widget_data = copy.deepcopy(fig._data)
    fig._widget_layout = copy.deepcopy(fig._layout_obj._props)


def fit_width(fig) -> None:
    """Make plotly.js fit ``fig`` to its box's width now. A plotly ≥ 6 widget sizes an autosized figure when
    it is first drawn — often before the page has laid its box out, so at the default 700 px — and does not
    follow its box afterwards; a *changed* ``autosize`` makes plotly.js measure the box again (plotly.py
    issue 5208). Called after each redraw and when a view is shown; the figure's state is kept for pages that
    connect later (:func:`keep_state`)."""
    fig.layout.autosize = False
    fig.layout.autosize = True
    keep_state(fig)
