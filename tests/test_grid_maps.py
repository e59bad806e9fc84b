"""Conv rules on the image grid (seed 000's MNIST reading): receptive-field centres of a rule's units and where
they fire, as pictures — checked pixel by pixel, and in the app's detail panel."""
import io

import numpy as np
import torch
from PIL import Image

import nnrules
from nnrules.attribution import viz
from nnrules.attribution.grid_maps import firing_map, grid_centres, mark_units, unit_positions


def _rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_names_become_cells_and_cells_become_input_pixels():
    assert unit_positions(["relu2:c5@3,4", "pool:c0"]) == [(5, (3, 4)), (0, None)]
    # a 14×14 map on a 28×28 input: cell (r, c) covers input pixels 2r..2r+1, its centre is 2r + 0.5
    np.testing.assert_allclose(grid_centres(["pool:c1@0,0", "pool:c9@13,6"], (14, 14), (28, 28)),
                               [[0.5, 0.5], [26.5, 12.5]])
    np.testing.assert_allclose(grid_centres(["relu2:c0@3,4"], (8, 8), (8, 8)), [[3.0, 4.0]])


def test_marks_land_on_the_cells_pixel_for_pixel():
    pic = np.zeros((32, 32, 3), np.uint8)  # an 8×8 input drawn at scale 4
    out = mark_units(pic, np.array([[3.0, 4.0]]), scale=4, size=1.0, color=(0, 190, 255))
    marked = np.argwhere((out == (0, 190, 255)).all(axis=2))
    assert marked[:, 0].min() == 12 and marked[:, 0].max() == 15 and marked[:, 1].min() == 16 and marked[:, 1].max() == 19
    assert len(marked) == 16 and pic.sum() == 0  # the input picture is not changed


def test_a_unit_fires_where_its_cell_is(digits):
    x = digits.test.tensors[0][:1]
    acts = nnrules.record(digits.model, (x, torch.zeros(1, dtype=torch.long)), ["relu2"], reduce="none",
                          progress=False)
    names = acts.unit_names["relu2"]
    top = int(np.argmax(acts.values["relu2"][0]))  # the most active unit: channel c at (r, col)
    (ch, (r, col)), = unit_positions([names[top]])
    fmap = firing_map(digits.model, x, "relu2", [names[top]])
    assert fmap.shape == x.shape[-2:]
    assert np.unravel_index(np.argmax(fmap), fmap.shape) == (r, col)  # same-size map: the cell is the pixel
    # a channel unit (reduce="max") fires wherever its map does
    whole = firing_map(digits.model, x, "relu2", [f"relu2:c{ch}"])
    assert whole[r, col] > 0 and (whole > 0).sum() >= 1


def test_a_conv_rules_detail_shows_its_units_on_the_grid(tmp_path):
    from nnrules.widgets.state import mining
    from nnrules.widgets.state.files import DataRoot
    from nnrules.widgets.state.loading import LoadedModel
    from nnrules.widgets.state.mining import MiningSettings
    from nnrules.widgets.state.results import RuleRows
    from nnrules.widgets.state.selection import Selection

    loaded = LoadedModel(DataRoot(tmp_path)).load_zoo("digits-cnn")
    result = mining.mine(loaded, MiningSettings(["relu2"], reduce="none"))
    rows = RuleRows(result.flow, loaded.class_names)
    assert len(rows.rules) > 0
    chosen = Selection(loaded, result, rows, n_exemplars=2, prototype_steps=2)
    chosen.select_rule(0)
    d = chosen.detail()
    assert "units on the grid" in d.heatmaps and "where the units fire" in d.heatmaps, d.errors
    row = rows.rules.iloc[0]
    names = [result.activations.unit_names["relu2"][u] for u in row["tail_idx"]]
    scale = chosen._scale()
    grid = _rgb(d.heatmaps["units on the grid"])
    marked = (grid == (0, 190, 255)).all(axis=2)
    for r, c in grid_centres(names, (8, 8), (8, 8)):  # every unit's cell is marked
        assert marked[int((r + 0.5) * scale), int((c + 0.5) * scale)]
    assert marked.sum() <= len(names) * scale * scale  # and nothing else
    assert _rgb(d.heatmaps["where the units fire"]).shape == grid.shape
    out = tmp_path / "grid.png"
    Image.fromarray(viz.grid([_rgb(p) for p in d.exemplars[:1]] + [grid, _rgb(d.heatmaps["where the units fire"])],
                             cols=3)).save(out)
