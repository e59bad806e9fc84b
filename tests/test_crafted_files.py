"""Crafted model files run nothing: ``torch.export`` archives with each of the loader's code paths (pickled
weights, constants, custom and opaque objects, sample inputs; symbolic-shape strings that sympify evaluates;
guards that are exec'd; node targets that resolve to any torch function; AOTInductor libraries) and a
TorchScript module with a side effect — through the library, the CLI, the app's state and its upload box.

Each crafted file is checked to be live where that can be shown: loaded with ``trust=True`` (torch's own
loader), its payload does run — so the refusals below are what keeps it from running."""
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import nnrules
from nnrules.cli import main as cli_main
from nnrules.recording.loading import UnsafeFileError


class _Mkdir:
    """Unpickling this creates a folder (what a malicious model file does, without a shell)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.act, self.fc = nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Linear(2 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(1))


def _pickled(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """A real archive from torch.export.save (a dynamic batch dimension, so it has a symbolic shape)."""
    path = tmp_path_factory.mktemp("pt2") / "plain.pt2"
    batch = torch.export.Dim("batch", min=1, max=512)
    program = torch.export.export(_Net().eval(), (torch.rand(4, 1, 8, 8),), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    return path


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """A copy of the archive ``src`` whose members ``edit(rel_name, bytes, prefix)`` replaces (returning bytes,
    or None to drop a member); ``edit(None, None, prefix)`` returns extra ``{rel_name: bytes}`` to add."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
        prefix = z.namelist()[0].split("/", 1)[0]
        for info in z.infolist():
            rel = info.filename.split("/", 1)[1]
            data = edit(rel, z.read(info), prefix)
            if data is not None:
                out.writestr(info, data)
        for rel, data in (edit(None, None, prefix) or {}).items():
            out.writestr(f"{prefix}/{rel}", data)
    return dst


def _json_edit(member: str, change):
    def edit(rel, data, prefix):
        if rel is None:
            return None
        if rel == member:
            doc = json.loads(data)
            change(doc)
            return json.dumps(doc).encode()
        return data
    return edit


def _crafted(plain: Path, folder: Path, marker: Path) -> dict[str, tuple[Path, bool]]:
    """name → (crafted archive, whether its payload can be seen to run under trust=True)."""
    out = {}

    def pickled_weight(rel, data, prefix):  # the first weight stored "use_pickle" with a payload
        if rel == "data/weights/model_weights_config.json":
            doc = json.loads(data)
            first = next(iter(doc["config"].values()))
            first["use_pickle"] = True
            return json.dumps(doc).encode()
        if rel == "data/weights/" + "weight_0":
            return _pickled(_Mkdir(marker))
        return data
    out["a pickled weight"] = (_rewrite(plain, folder / "weight.pt2", pickled_weight), True)

    def constant(kind, payload):
        def edit(rel, data, prefix):
            if rel is None:
                return {f"data/constants/{kind}0": payload}
            if rel == "data/constants/model_constants_config.json":
                doc = json.loads(data)
                doc["config"]["evil"] = {"path_name": f"{kind}0", "is_param": False, "use_pickle": True,
                                         "tensor_meta": None}
                return json.dumps(doc).encode()
            return data
        return edit
    out["a pickled tensor constant"] = (_rewrite(plain, folder / "tensor.pt2",
                                                 constant("tensor_", _pickled(_Mkdir(marker)))), True)
    import pickle
    # torch < 2.12 has no opaque objects (its loader refuses the name before unpickling): live where it has
    from torch._C._export import pt2_archive_constants

    opaque_live = hasattr(pt2_archive_constants, "OPAQUE_OBJ_FILENAME_PREFIX")
    out["an opaque object"] = (_rewrite(plain, folder / "opaque.pt2",
                                        constant("opaque_obj_", pickle.dumps(_Mkdir(marker)))), opaque_live)
    out["a custom object"] = (_rewrite(plain, folder / "custom.pt2", constant("custom_obj_", b"\x80\x02N.")), False)

    def sample_inputs(rel, data, prefix):
        return _pickled(_Mkdir(marker)) if rel == "data/sample_inputs/model.pt" else data
    out["pickled sample inputs"] = (_rewrite(plain, folder / "inputs.pt2", sample_inputs), True)

    def sympy_code(rel, data, prefix):  # sympify evaluates the symbol's expression string
        if rel == "models/model.json":
            text = data.decode()
            i = text.index('"expr_str": "') + len('"expr_str": "')
            j = text.index('"', i)
            code = f"Symbol(__import__('os').mkdir('{marker}') or '{text[i:j].split(chr(39))[1]}', positive=True)"
            return (text[:i] + code.replace('"', '\\"') + text[j:]).encode()
        return data
    out["code in a symbolic shape"] = (_rewrite(plain, folder / "sympy.pt2", sympy_code), True)
    out["code in a guard"] = (_rewrite(plain, folder / "guard.pt2", _json_edit(
        "models/model.json", lambda d: d.__setitem__("guards_code", [f"__import__('os').mkdir('{marker}')"]))), False)

    def target(doc):
        doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.from_file"
    out["a node calling torch.from_file"] = (_rewrite(plain, folder / "target.pt2",
                                                      _json_edit("models/model.json", target)), False)

    def aten_file(doc):
        doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.aten.from_file.default"
    out["a node calling aten.from_file"] = (_rewrite(plain, folder / "aten.pt2",
                                                     _json_edit("models/model.json", aten_file)), False)

    def aoti(rel, data, prefix):
        return {"data/aotinductor/model/model.so": b"\x7fELF"} if rel is None else data
    out["an AOTInductor library"] = (_rewrite(plain, folder / "aoti.pt2", aoti), False)

    def legacy(rel, data, prefix):
        return {"data/weights/model.pt": _pickled(_Mkdir(marker))} if rel is None else data
    out["a legacy pickled weights file"] = (_rewrite(plain, folder / "legacy.pt2", legacy), True)
    return out


def test_a_plain_archive_still_loads_and_runs(plain):
    model = nnrules.load_model(plain)
    x = torch.rand(5, 1, 8, 8)
    torch.testing.assert_close(model(x), _Net().eval()(x))


def test_every_crafted_archive_is_refused_before_torch_reads_it(plain, tmp_path):
    marker = tmp_path / "pwned"
    crafted = _crafted(plain, tmp_path, marker)
    for name, (path, live) in crafted.items():
        with pytest.raises(UnsafeFileError, match="torch.export archive") as err:
            nnrules.load_model(path)
        assert not marker.exists(), name
        assert "trust=True" in str(err.value), name
    # the crafted files are live: torch's own loader runs the payloads of those we can observe
    for name, (path, live) in crafted.items():
        if not live:
            continue
        try:
            nnrules.load_model(path, trust=True)
        except Exception:  # noqa: BLE001 — the payload ran first; the archive itself may then not load
            pass
        assert marker.exists(), f"{name}: the payload did not run under trust=True (the test file is not live)"
        marker.rmdir()


def test_the_cli_refuses_crafted_archives(plain, tmp_path, capsys):
    marker = tmp_path / "pwned"
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "imgs" / "a" / "0.png")
    for name, (path, _) in _crafted(plain, tmp_path, marker).items():
        assert cli_main(["layers", "--model-file", str(path), "--data", str(tmp_path / "imgs")]) != 0
        assert "would run code" in capsys.readouterr().err, name
        assert not marker.exists(), name


class _FileWriter(nn.Module):
    """A module whose forward overwrites the file at ``path`` (a file outside any data root)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.fc = nn.Linear(64, 3)

    def forward(self, x):
        t = torch.from_file(self.path, shared=True, size=4, dtype=torch.uint8)
        t.fill_(88)
        return self.fc(x.flatten(1)[:, :64]) + 0 * t[0].float()  # used: TorchScript keeps the write


def _side_effect_script(target: Path) -> torch.jit.ScriptModule:
    """A TorchScript module whose forward overwrites ``target`` (module-level class: TorchScript reads its
    source; a class defined inside a function failed to script after other tests had run)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(_FileWriter(str(target)))


def test_a_side_effecting_torchscript_file_runs_nothing(tmp_path, capsys):
    from nnrules.widgets.state.errors import UserInputError
    from nnrules.widgets.state import ExplorerState

    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"safe")
    root = tmp_path / "root"
    (root / "imgs" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "imgs" / "a" / "0.png")
    _side_effect_script(victim).save(str(root / "weights.pt"))
    with pytest.raises(UnsafeFileError, match="TorchScript"):
        nnrules.load_model(root / "weights.pt")
    assert cli_main(["layers", "--model-file", str(root / "weights.pt"), "--data", str(root / "imgs")]) != 0
    assert "TorchScript" in capsys.readouterr().err
    for arch in ("", "digits-cnn", "resnet18"):
        with pytest.raises(UserInputError, match="never runs code from a file"):
            ExplorerState(data_root=root).load_files("weights.pt", "imgs", architecture=arch)
    assert victim.read_bytes() == b"safe"
    # live: trusted and called, the module does write the file
    nnrules.load_model(root / "weights.pt", trust=True)(torch.rand(1, 1, 8, 8))
    assert victim.read_bytes() == b"XXXX"


def test_the_app_and_its_upload_box_refuse_crafted_archives(plain, tmp_path):
    """A crafted .pt2 uploaded under the name weights.pt: saved under the session folder, refused on load."""
    import datetime

    from nnrules.widgets import Explorer
    from nnrules.widgets.state.errors import UserInputError
    from nnrules.widgets.state import ExplorerState

    root = tmp_path / "root"
    (root / "imgs" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "imgs" / "a" / "0.png")
    marker = tmp_path / "pwned"
    (tmp_path / "src").mkdir()
    crafted = _crafted(plain, tmp_path / "src", marker)
    state = ExplorerState(data_root=root)
    app = Explorer(model=None, threaded=False, data_root=str(root))
    panel = app.model_panel
    for name, (path, _) in crafted.items():
        (root / path.name).write_bytes(path.read_bytes())
        with pytest.raises(UserInputError, match="never runs code from a file"):
            state.load_files(path.name, "imgs")
        panel.upload_weights.value = [{"name": "weights.pt", "type": "", "size": path.stat().st_size,
                                       "content": memoryview(path.read_bytes()),
                                       "last_modified": datetime.datetime.now()}]
        panel.data_path.value = "imgs"
        panel.architecture.value = ""
        panel.source.value = "files"
        assert not panel.run_load()
        assert "never runs code from a file" in panel.msg.value, (name, panel.msg.value)
        assert not marker.exists(), name
