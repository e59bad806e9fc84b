"""The app's glossary: the words the panels use, each in one or two plain sentences (a collapsible panel)."""
from __future__ import annotations

import html

import ipywidgets as W

__all__ = ["GLOSSARY", "glossary_panel"]

#: term → what it means here. Shown under the controls; the parameters' own tooltips come from the registry.
GLOSSARY: dict[str, str] = {
    "unit / group": "A unit is one neuron, or one conv filter (channel). A group is a set of units a rule "
                    "names together.",
    "Conv → unit": "A conv filter gives a whole map per image; the app turns it into one number per image "
                   "(its maximum, its mean, or its l1 norm) before asking whether it fires.",
    "On when": "When a unit counts as firing (on) for an image: above its mean over the data, above zero, or "
               "above a quantile. Rules are about units being on together.",
    "rule X → Y": "ExplaiNN: when the head group X is on, the tail group Y tends to be on too. The first head "
                  "is the classes (what the model predicts), the next heads are the previous tails.",
    "l of X, k of Y": "A robust rule needs only some of its units: \"2 of {a, b, c}\" means at least 2 of the 3 "
                      "are on. l = 1: a disjunction (any of them); l = all: a conjunction (all of them); "
                      "between: approximate.",
    "support": "How many images the rule's head holds for.",
    "confidence": "Of those images, the share where the tail holds too.",
    "stability": "The share of half-samples of the data (the miner mines each half again, 'resamples' of them) "
                 "in which the same rule is found again. 1: every half finds it; near 0: resampling alone "
                 "makes it come and go. Rules below the chosen stability can be drawn faint.",
    "held-out confidence": "A 95 % interval for the rule's confidence measured on images it was not mined on "
                           "(each half-sample that found the rule tests it on the other half).",
    "beyond the null": "Compare: a difference between the two models that resampling one model's data does not "
                       "produce (a rule stable in one model and rare in the other's half-samples, or the same "
                       "rule with held-out confidences that do not overlap). The rest is within resampling noise.",
    "gain (bits)": "How much shorter the data become to describe with the rule than without it (MDL). "
                   "Bigger is a stronger rule. ERIC and patch rules have none (—).",
    "θ (confidence)": "ExplaiNN keeps only rules at least this confident (0: let MDL alone decide).",
    "μ (merge bound)": "A bound on how far ExplaiNN searches when merging groups; empty = exhaustive.",
    "α (stop)": "ERIC's trees stop splitting where a branch would hold less than this share of its parent's "
                "images (the paper's 0.01).",
    "λ": "NeuroChains' weight on keeping few filters; the chain's size depends more on Steps, and on "
         "\"Keep agreement ≥\" when that is set.",
    "τ (keep above)": "NeuroChains removes filters whose learned score ends below this.",
    "ERIC literal": "A kernel being on (c12) or off (¬c12) for an image; ERIC's rules are ANDs of literals "
                    "that imply a class or a kernel of the next layer.",
    "patch rule": "A set of filters that are among the strongest in the image patches Grad-CAM marks as "
                  "important for a class; its exemplars show those patches outlined.",
    "chain (NeuroChains)": "The few filters, layer by layer, that keep the model's prediction on the chosen "
                           "images when everything else is switched off.",
    "Focus": "Which rules the flow draws: the top ones by support; the top ones by gain in each layer pair "
             "with the rest summed into a grey \"other\" link (drawn at most half as wide as the shown "
             "rules; its hover gives its real share); a chosen rule's chain (the rules that share units with "
             "it, layer by layer); or one class's chain.",
    "class view": "Choose a class: the groups of units that fire most specifically on it, from the output "
                  "down. Precision: of the images where the group fires, the share predicted as the class. "
                  "Recall: of the images predicted as the class, the share where the group fires. Lift: how "
                  "many times the class's own share the precision is. Each is measured again on held-out "
                  "images where the model has them.",
    "specific": "A group is specific to a class when at least half of the images where it fires are "
                "predicted as that class.",
    "this image / your photo": "Pick an image in the gallery, or upload a photo (PNG or JPEG): it is made like "
                               "the data (cropped, resized, grey or inverted as the data are) and the rules that "
                               "hold for it are listed, the most specific to its predicted class first. Nothing "
                               "is mined again and the photo never joins the data.",
    "where else": "Images where a rule's tail units fire but the rule does not apply: what else those units "
                  "respond to.",
    "search": "Type a class name, a unit (relu3:28), a rule number or a layer name; the first match opens.",
    "prototype": "An image synthesised to make the group fire as much as possible (activation "
                 "maximisation): what the group looks for.",
    "exemplars": "The real images where the group fires most — for a rule, among the images where the rule "
                 "holds, spread over the classes of its head.",
    "heatmap (LRP, Grad-CAM)": "Which pixels made the model's output (or the group) high: red for the target, "
                               "blue against it, white neutral.",
}


def glossary_panel() -> W.Accordion:
    """A closed accordion "Help: the words used here" holding :data:`GLOSSARY` as a definition list."""
    # a term on its own line, whole: pages' own CSS may float a <dt> beside its <dd> in a narrow column
    rows = "".join(f"<dt style='float:none;width:auto;display:block;white-space:nowrap'><b>{html.escape(t)}</b></dt>"
                   f"<dd style='margin:0 0 6px 8px'>{html.escape(d)}</dd>"
                   for t, d in GLOSSARY.items())
    body = W.HTML(f"<dl class='nnr-glossary' style='font-size:11px;margin:0'>{rows}</dl>")
    acc = W.Accordion(children=[body], selected_index=None)
    acc.set_title(0, "Help: the words used here")
    acc.add_class("nnr-help")
    return acc
