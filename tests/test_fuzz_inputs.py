"""Hostile inputs nobody wrote by hand (hypothesis): every public entry point that takes a user's bytes,
names or numbers answers with a value that keeps its invariants or with our ValueError/TypeError — never a
raw error from deep inside, never a silently wrong value. Complements the hand-written grid in
test_bad_input.py (seeded: the same examples on every run, so CI is reproducible)."""
import io
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnrules
from nnrules import BinaryMatrix, Rule, RuleSet
from nnrules.recording.images import UnreadableImage, read_image
from nnrules.widgets.state.errors import UserInputError
from nnrules.widgets.state.files import DataRoot

FAST = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
units = st.lists(st.integers(-3, 12), max_size=5)
counts = st.integers(-3, 20)


@FAST
@given(head=units, tail=units, l=counts, k=counts, support=counts, holds=counts,
       negated=st.lists(st.integers(-1, 12), max_size=3), gain=st.floats(allow_nan=True))
def test_a_rule_is_valid_or_refused(head, tail, l, k, support, holds, negated, gain):
    try:
        r = Rule(tuple(head), tuple(tail), l, k, support, holds, gain, tuple(negated))
    except ValueError:
        return
    assert r.head and 1 <= r.head_min <= len(r.head) and 0 <= r.holds <= r.support
    assert (1 <= r.tail_min <= len(r.tail)) if r.tail else r.tail_min == 0
    assert set(r.negated) <= set(r.tail) and min(r.head) >= 0 and len(set(r.head)) == len(r.head)
    assert 0.0 <= r.confidence <= 1.0
    # a valid rule survives the JSON round trip unchanged
    assert RuleSet.from_json(RuleSet([r]).to_json()).rules == [r]


@FAST
@given(words=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4), n=st.integers(-2, 300))
def test_a_packed_matrix_never_counts_samples_it_does_not_have(words, n):
    w = np.array([words], dtype=np.uint64)
    try:
        m = BinaryMatrix(w, n)
    except ValueError:
        return
    assert 0 <= int(m.support()[0]) <= n
    np.testing.assert_array_equal(BinaryMatrix.from_dense(m.to_dense()).words, m.words)


@FAST
@given(text=st.text(max_size=400))
def test_any_typed_path_stays_in_the_data_root_or_is_a_user_error(tmp_path_factory, text):
    root = DataRoot(tmp_path_factory.getbasetemp() / "fuzzroot")
    root.path.mkdir(exist_ok=True)
    (root.path / "a.pt").touch()
    try:
        p = root.resolve(text, "model file")
    except UserInputError:
        return
    assert p == root.path or root.path in p.parents


@FAST
@given(names=st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=4), data=st.binary(max_size=64))
def test_a_zip_of_any_names_unpacks_whole_or_leaves_nothing(tmp_path_factory, names, data):
    root = DataRoot(tmp_path_factory.mktemp("zips"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n in names:
            z.writestr(n, data)
    try:
        out = root.extract_zip("x.zip", buf.getvalue())
    except UserInputError:
        assert list(root.upload_dir().iterdir()) == []  # nothing half-made is left
        return
    assert root.upload_dir() in out.parents or out.parent == root.upload_dir()


PNG = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"")


@FAST
@given(head=st.sampled_from(PNG), body=st.binary(max_size=300), size=st.one_of(st.none(), st.integers(1, 16)))
def test_any_bytes_named_like_an_image_read_or_refused(tmp_path_factory, head, body, size):
    path = tmp_path_factory.getbasetemp() / "fuzz.png"
    path.write_bytes(head + body)
    try:
        im = read_image(path, size=size, show=lambda p: p.name)
    except UnreadableImage as err:
        assert str(tmp_path_factory.getbasetemp()) not in str(err)
        return
    assert im.mode == "RGB" and (size is None or im.size == (size, size))


@pytest.fixture(scope="module")
def archive_bytes(tmp_path_factory) -> bytes:
    from torch import nn

    path = tmp_path_factory.mktemp("pt2") / "m.pt2"
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval()
    torch.export.save(torch.export.export(model, (torch.rand(2, 4),)), path)
    return path.read_bytes()


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_a_mutated_export_archive_loads_or_is_refused(tmp_path_factory, archive_bytes, edits):
    data = bytearray(archive_bytes)
    for pos, byte in edits:
        data[pos % len(data)] = byte
    path = tmp_path_factory.getbasetemp() / "mutated.pt2"
    path.write_bytes(bytes(data))
    try:
        model = nnrules.load_model(path)
    except ValueError:  # UnsafeFileError included
        return
    assert isinstance(model, torch.nn.Module)
