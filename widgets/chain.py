"""The local-chain tab: NeuroChains' sub-network for a few samples of chosen classes, as a Sankey of kept
filters (link width = |weights| between them); clicking a filter shows its prototype and exemplars."""
from __future__ import annotations

import html
import threading

import ipywidgets as W
import plotly.graph_objects as go

from ._ui import image, message
from .state import ExplorerState, LocalChain, UserInputError
from .views import PALETTE, click_target, clickable_sankey

__all__ = ["ChainPanel", "chain_figure"]


def chain_figure(chain: LocalChain | None) -> go.Figure:
    nodes = chain.nodes if chain is not None else None
    if nodes is None or nodes.empty:
        fig = go.Figure(clickable_sankey([], [], [], [], [], [], []))
        fig.add_annotation(text="Pick classes and press Extract" if chain is None else "Nothing was kept",
                           showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=14, color="#666"))
    else:
        layers = list(dict.fromkeys(nodes["layer"]))
        links = chain.links
        fig = go.Figure(clickable_sankey(
            labels=list(nodes["label"]), colors=[PALETTE[layers.index(l) % len(PALETTE)] for l in nodes["layer"]],
            node_text=[f"{u[0]}: score {s:.2f}" for u, s in zip(nodes["units"], nodes["score"])],
            sources=list(links["source"]), targets=list(links["target"]), values=list(links["value"].astype(float)),
            link_text=[f"|w| = {v:.3f}" for v in links["value"]]))
        kept, total = chain.extraction.size_
        fig.update_layout(title=dict(text=f"{kept} of {total} filters kept · " + " → ".join(layers), font=dict(size=12)))
    fig.update_layout(height=480, margin=dict(l=10, r=10, t=30, b=10))
    return fig


class ChainPanel:
    def __init__(self, state: ExplorerState, threaded: bool = True) -> None:
        self.state, self.threaded = state, threaded
        self.classes = W.SelectMultiple(options=[], rows=5, description="Classes")
        self.classes.add_class("nnr-chain-classes")
        self.per_class = W.IntText(value=10, description="Per class")
        self.lam = W.BoundedFloatText(value=0.005, min=0.0, max=1.0, step=0.001, description="λ")
        self.steps = W.IntText(value=300, description="Steps")
        self.extract = W.Button(description="Extract", button_style="success")
        self.extract.add_class("nnr-extract")
        self.msg = W.HTML()
        self.msg.add_class("nnr-chain-msg")
        self.chain: LocalChain | None = None
        self.figure = go.FigureWidget(chain_figure(None))
        self.figure.data[0].on_click(self._click)
        box = W.Box([self.figure])
        box.add_class("nnr-chain")
        self.pictures = W.VBox()
        self.thread: threading.Thread | None = None
        self.extract.on_click(lambda _: self.start())
        intro = W.HTML("<small>NeuroChains (seed 004): the fewest filters, copied from the model and rescaled, that "
                       "keep its outputs on confidently predicted samples of these classes.</small>")
        self.widget = W.VBox([intro, W.HBox([self.classes, W.VBox([self.per_class, self.lam, self.steps])]),
                              self.extract, self.msg, box, self.pictures])

    def refresh(self) -> None:
        """A new model: offer its classes, clear the chain."""
        self.classes.options = self.state.class_names
        self.classes.value = tuple(self.state.class_names[:2])
        self.chain = None
        self._draw()
        self.pictures.children = ()
        message(self.msg, "")

    def _draw(self) -> None:
        fig = chain_figure(self.chain)
        with self.figure.batch_update():
            self.figure.data[0].update(fig.data[0].to_plotly_json(), overwrite=True)
            self.figure.layout.update(fig.layout.to_plotly_json(), overwrite=True)
            self.figure.layout.annotations = fig.layout.annotations

    def start(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        message(self.msg, "extracting… (about a second per 100 steps for a small CNN)")
        self.extract.disabled = True
        if self.threaded:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        else:
            self._run()

    def _run(self) -> None:
        try:
            self.chain = self.state.local_chain(list(self.classes.value), self.per_class.value, self.lam.value,
                                                self.steps.value)
            f = self.chain.fidelity
            message(self.msg, f"Kept {self.chain.extraction.size_[0]} of {self.chain.extraction.size_[1]} filters; "
                    f"same prediction on {f['agreement']:.0%} of the {len(self.chain.samples)} samples "
                    f"(probability drop {f['prob_drop']:.3f}). Click a filter.", "ok")
            self._draw()
        except UserInputError as err:
            message(self.msg, str(err), "error")
        except Exception as err:  # noqa: BLE001 — a worker thread must report, never die silently
            message(self.msg, f"Extraction failed: {err}", "error")
        finally:
            self.extract.disabled = False

    def _click(self, trace, points, state) -> None:
        if points.point_inds and self.chain is not None:
            kind, i = click_target(points.point_inds[0], len(self.chain.links))
            if kind == "node":
                self.show(i)

    def show(self, node: int) -> None:
        """Prototype and exemplars of a kept filter."""
        try:
            proto, exemplars, caption = self.state.chain_pictures(self.chain, node)
        except Exception as err:  # noqa: BLE001 — keep the app alive; say what failed
            message(self.msg, f"Could not draw the filter: {err}", "error")
            return
        self.pictures.children = [W.HTML(f"<b>{html.escape(caption)}</b> — prototype and top exemplars"),
                                  W.HBox([image(proto, "nnr-chain-prototype")]
                                         + [image(png, "nnr-chain-exemplar") for png in exemplars],
                                         layout=W.Layout(flex_flow="row wrap"))]
