"""Past one machine: recording into Zarr, packed matrices in Zarr, ExplaiNN counting on a Dask LocalCluster.

The cluster is real (2 worker processes); every sharded fit is compared with the in-memory fit of the same
data: the same rules (heads, tails, thresholds, counts, gains) and code length."""
from __future__ import annotations

import numpy as np
import pytest

import nnrules
from nnrules import BinaryMatrix, Binarizer, ExplaiNN
from nnrules.data.synthetic import planted_rules
from nnrules.scale import StoredBits, open_activations, open_bits

pytest.importorskip("zarr")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    c = nnrules.scale.local_cluster(2)
    try:
        yield c
    finally:
        c.close()
        c.cluster.close()


def _same_fit(a: ExplaiNN, b: ExplaiNN) -> None:
    assert abs(a.codelength_ - b.codelength_) <= 1e-9
    assert a.baseline_codelength_ == pytest.approx(b.baseline_codelength_, abs=1e-9)
    fa, fb = a.rules_.to_frame(), b.rules_.to_frame()
    assert len(fa) == len(fb) > 0
    assert fa.drop(columns="gain").equals(fb.drop(columns="gain"))
    np.testing.assert_allclose(fa["gain"], fb["gain"], atol=1e-9)
    assert a.n_pairs_ == b.n_pairs_ and a.shared_ == b.shared_


# ----------------------------------------------------------------------------- stores
@pytest.mark.parametrize("n, units, chunk_rows", [(1000, 300, 192), (640, 7, 64), (1, 3, 64), (4096, 513, 1024)])
def test_packed_matrices_round_trip_through_zarr_whatever_the_chunks(tmp_path, n, units, chunk_rows):
    rng = np.random.default_rng(n + units)
    m = BinaryMatrix.from_dense(rng.random((n, units)) < 0.3, layer="fc", names=[f"u{i}" for i in range(units)])
    stored = m.to_zarr(tmp_path / "m.zarr", chunk_rows=chunk_rows)
    back = BinaryMatrix.from_zarr(tmp_path / "m.zarr")
    assert np.array_equal(back.words, m.words) and back.n_samples == n
    assert back.names == m.names and back.layer == "fc"
    assert np.array_equal(stored.support(), m.support())
    # a row range and a unit selection read only what they name
    sel = stored.select([units - 1, 0])
    w = m.words.shape[1]
    assert np.array_equal(sel.read(0, w), m.words[[units - 1, 0]])
    ranges = stored.row_ranges(3)
    assert ranges[0][0] == 0 and ranges[-1][1] == w and all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert np.array_equal(np.hstack([stored.read(a, b) for a, b in ranges]), m.words)
    # equal columns have equal digests, others not
    dig = stored.digests()
    assert len(set(dig)) == len({m.words[i].tobytes() for i in range(units)})


def test_bad_stores_and_chunks_get_clear_errors(tmp_path):
    m = BinaryMatrix.from_dense(np.eye(70, dtype=bool))
    with pytest.raises(ValueError, match="chunk_rows must be a positive multiple of 64"):
        m.to_zarr(tmp_path / "a.zarr", chunk_rows=100)
    m.to_zarr(tmp_path / "a.zarr")
    with pytest.raises(ValueError, match="exists; choose a new path or pass overwrite=True"):
        m.to_zarr(tmp_path / "a.zarr")
    m.to_zarr(tmp_path / "a.zarr", overwrite=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no bit matrix written by nnrules"):
        open_bits(tmp_path / "empty")
    with pytest.raises(ValueError, match="not an activations store"):
        open_activations(tmp_path / "a.zarr")


def test_record_into_a_store_equals_the_recording_in_memory(tmp_path):
    z = nnrules.zoo.load("digits-cnn")
    layers = ["relu2", "relu3"]
    mem = nnrules.record(z.model, z.train, layers, reduce="none", progress=False, batch_size=100)
    st = nnrules.record(z.model, z.train, layers, reduce="none", progress=False, batch_size=100,
                        store=tmp_path / "acts.zarr")
    again = open_activations(tmp_path / "acts.zarr")
    for acts in (st, again):
        assert acts.layers == mem.layers and acts.unit_names == mem.unit_names and acts.shapes == mem.shapes
        for k in mem.layers:
            assert np.array_equal(np.asarray(acts.values[k][:]), mem.values[k]), k
        assert np.array_equal(acts.predictions, mem.predictions) and np.array_equal(acts.labels, mem.labels)
    # binarized in passes into the store: the same bits as in memory
    for method in ("positive", "mean", "topk"):
        b_mem = Binarizer(method, k=3).fit_transform(mem)
        b_st = Binarizer(method, k=3).fit_transform(st)
        for k in mem.layers:
            assert isinstance(b_st[k], StoredBits)
            assert np.array_equal(b_st[k].load().words, b_mem[k].words), (method, k)
            assert b_st[k].names == b_mem[k].names
    # a recording that fails half-way leaves no store behind, and an existing store is never overwritten
    with pytest.raises(ValueError, match="exists"):
        nnrules.record(z.model, z.train, layers, progress=False, store=tmp_path / "acts.zarr")

    def stop(done, total):
        if done >= 200:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nnrules.record(z.model, z.train, layers, progress=False, batch_size=100, store=tmp_path / "b.zarr",
                       on_batch=stop)
    assert not (tmp_path / "b.zarr").exists()
    (tmp_path / "mine").mkdir()  # the user's own empty folder: the failed recording empties it, never removes it
    with pytest.raises(KeyboardInterrupt):
        nnrules.record(z.model, z.train, layers, progress=False, batch_size=100, store=tmp_path / "mine",
                       on_batch=stop)
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())


def test_stores_are_checked_against_their_data(tmp_path):
    """Issue 46: a store's attributes are not trusted — supports and digests that differ from the words, words of
    another dtype, a size that does not fit, bits past the last sample, activations of another dtype or length:
    each a ValueError naming the store, never a silently wrong rule."""
    import zarr

    m = BinaryMatrix.from_dense(np.random.default_rng(0).random((130, 5)) < 0.3)
    m.to_zarr(tmp_path / "ok.zarr")
    assert np.array_equal(open_bits(tmp_path / "ok.zarr").support(), m.support())

    def tampered(name, change):
        m.to_zarr(tmp_path / name)
        arr = zarr.open_array(str(tmp_path / name), path="words", mode="r+")
        change(arr)
        return tmp_path / name

    def attr(key, value):
        return lambda arr: arr.attrs.update({key: value})

    def words(data):
        def change(arr):
            attrs = dict(arr.attrs)
            new = zarr.open_group(str(arr.store.root), mode="a").create_array(
                "words", data=data, chunks=arr.chunks, overwrite=True)
            new.attrs.update(attrs)
        return change

    def past_end(arr):
        w = np.asarray(arr[:])
        w[0, -1] |= np.uint64(1) << np.uint64(63)  # sample 191 of 130
        arr[:] = w
    cases = {"support": (attr("support", [0] * 5), "has support"),
             "digest": (attr("digest", ["0" * 32] * 5), "another digest"),
             "names": (attr("names", ["a"]), "names are not a list of 5"),
             "n": (attr("n_samples", 1000), "n_samples 1000 does not fit"),
             "float": (words(m.words.astype(np.float64)), "float64"),
             "int8": (words(m.words.astype(np.int8)), "int8"),
             "past": (past_end, "past its last sample")}
    for name, (change, match) in cases.items():
        path = tampered(f"{name}.zarr", change)
        with pytest.raises(ValueError, match=match) as err:
            open_bits(path)
        assert f"{name}.zarr" in str(err.value) and "write it again" in str(err.value), name
    z = nnrules.zoo.load("digits-cnn")
    nnrules.record(z.model, z.train, ["relu3"], progress=False, store=tmp_path / "acts.zarr")
    group = zarr.open_group(str(tmp_path / "acts.zarr"), mode="a")
    group.create_array("predictions", data=np.asarray(group["predictions"][:])[:-1], overwrite=True)
    with pytest.raises(ValueError, match="acts.zarr.*predictions are int64 of shape"):
        open_activations(tmp_path / "acts.zarr")
    nnrules.record(z.model, z.train, ["relu3"], progress=False, store=tmp_path / "f64.zarr")
    group = zarr.open_group(str(tmp_path / "f64.zarr"), mode="a")
    group.create_array("values/0", data=np.asarray(group["values/0"][:], np.float64), overwrite=True)
    with pytest.raises(ValueError, match="f64.zarr.*'relu3' holds float64"):
        open_activations(tmp_path / "f64.zarr")


# ----------------------------------------------------------------------------- counting on the cluster
def test_explainn_on_a_2_worker_cluster_equals_the_fit_in_memory(tmp_path, client):
    # noisy exclusive heads: seeds, merges of seeds, absorption, heads from the tails' rows all take part
    p = planted_rules(n=3000, n_rules=30, heads="exclusive", noise=0.1, seed=1)
    head, tail = BinaryMatrix.from_dense(p.head), BinaryMatrix.from_dense(p.tail)
    mem = ExplaiNN().fit(head, tail)
    assert mem.n_absorbed_ > 0 and mem.n_reheaded_ > 0 and mem.n_grouped_ > 0
    h = head.to_zarr(tmp_path / "h.zarr", chunk_rows=448)  # 7 words a chunk: ranges of unequal size
    t = tail.to_zarr(tmp_path / "t.zarr", chunk_rows=448)
    sharded = ExplaiNN().fit(h, t, client=client)
    _same_fit(mem, sharded)
    assert mem.counting_ is None and sharded.counting_["range_calls"] > 0 and sharded.counting_["unit_tasks"] >= 2
    # the exhaustive search and μ take the same path
    _same_fit(ExplaiNN(search="exhaustive", mu=3).fit(head, tail),
              ExplaiNN(search="exhaustive", mu=3).fit(h, t, client=client))
    # without a client the stores are loaded: nothing changes
    _same_fit(mem, ExplaiNN().fit(h, t))


def test_units_shared_by_both_sides_are_found_from_the_stored_digests(tmp_path, client):
    p = planted_rules(n=2000, n_rules=10, heads="cooccur", noise=0.01, seed=3)
    tail = np.hstack([p.tail, p.head[:, :3]])  # three head units again on the tail side
    head, tail = BinaryMatrix.from_dense(p.head), BinaryMatrix.from_dense(tail)
    mem = ExplaiNN().fit(head, tail)
    assert len(mem.shared_) == 3
    sharded = ExplaiNN().fit(head.to_zarr(tmp_path / "h.zarr"), tail.to_zarr(tmp_path / "t.zarr"), client=client)
    _same_fit(mem, sharded)


def test_a_flow_traced_from_a_stored_recording_equals_the_one_in_memory(tmp_path, client):
    z = nnrules.zoo.load("digits-cnn")
    layers = ["relu3", "relu2"]
    mem = nnrules.record(z.model, z.train, layers, progress=False)
    st = nnrules.record(z.model, z.train, layers, progress=False, store=tmp_path / "acts.zarr")
    f_mem = nnrules.trace(mem, layers, ExplaiNN(), binarizer=Binarizer("mean"))
    f_st = nnrules.trace(st, layers, ExplaiNN(), binarizer=Binarizer("mean"))  # the active client counts
    assert [len(r) for r in f_mem.rulesets] == [len(r) for r in f_st.rulesets]
    for a, b in zip(f_mem.rulesets, f_st.rulesets):
        assert a.codelength == pytest.approx(b.codelength, abs=1e-9)
        assert a.to_frame().drop(columns="gain").equals(b.to_frame().drop(columns="gain"))


def test_a_client_without_a_store_is_refused_with_advice(client):
    with pytest.raises(ValueError, match="pass head and tail as StoredBits"):
        ExplaiNN().fit(np.eye(4, dtype=bool), np.eye(4, dtype=bool), client=client)
    with pytest.raises(TypeError, match="client must be a dask.distributed.Client"):
        ExplaiNN().fit(np.eye(4, dtype=bool), np.eye(4, dtype=bool), client="tcp://x")


def test_the_cli_records_into_a_store_and_mines_on_a_cluster(tmp_path, client, capsys):
    from nnrules.cli import main
    store = str(tmp_path / "acts.zarr")
    assert main(["record", "relu3", "relu2", "--store", store]) == 0
    assert main(["mine", "--store", store, "relu3", "relu2", "--scheduler", client.scheduler.address]) == 0
    out = capsys.readouterr().out
    assert "on 2 Dask workers" in out and "output → relu3:" in out
    assert main(["mine", "--store", store, "relu3", "--workers", "1", "--scheduler", "tcp://x"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["mine", "--store", store, "relu3", "--workers", "0"]) == 2  # issue 46: 0 was read as "none"
    assert "--workers must be ≥ 1" in capsys.readouterr().err


def test_a_scheduler_that_does_not_answer_is_a_message_not_a_hang(tmp_path, monkeypatch, capsys):
    import socket
    import time

    import nnrules.cli as cli
    from nnrules.cli import main
    monkeypatch.setattr(cli, "SCHEDULER_TIMEOUT", "2s")
    store = str(tmp_path / "acts.zarr")
    assert main(["record", "relu3", "--store", store]) == 0
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    assert main(["mine", "--store", store, "relu3", "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    assert time.monotonic() - t < 30 and "no Dask scheduler answered" in capsys.readouterr().err


def test_the_core_works_without_the_scale_dependencies(tmp_path):
    """Without dask, distributed and zarr (blocked in a fresh process) nnrules records, binarizes and mines;
    a store asks for nnrules[scale] by name."""
    import subprocess
    import sys
    code = """
import sys
for m in ("zarr", "dask", "distributed"):
    sys.modules[m] = None
import numpy as np, nnrules
from nnrules.data.synthetic import planted_rules
p = planted_rules(n=1000, n_rules=5, seed=0)
m = nnrules.ExplaiNN().fit(p.head, p.tail)
assert m.counting_ is None and len(m.rules_) > 0
try:
    nnrules.BinaryMatrix.from_dense(np.eye(3, dtype=bool)).to_zarr(sys.argv[1])
except ImportError as err:
    assert "nnrules[scale]" in str(err), err
else:
    raise SystemExit("to_zarr worked without zarr")
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.zarr")], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
