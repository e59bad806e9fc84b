import numpy as np
import pytest

from nnrules import BinaryMatrix
from nnrules.miners.explainn._reference import and_count_reference
from nnrules.data.bits import and_count, pack_columns, popcount_rows, tidlists, unpack_columns


@pytest.mark.parametrize("n", [1, 63, 64, 65, 200])
def test_pack_roundtrip_and_padding_bits_are_zero(n):
    rng = np.random.default_rng(n)
    dense = rng.random((n, 7)) < 0.4
    words = pack_columns(dense)
    assert words.shape == (7, -(-n // 64)) and words.dtype == np.uint64
    assert np.array_equal(unpack_columns(words, n), dense)
    assert np.array_equal(popcount_rows(words), dense.sum(0))  # padding bits would inflate this


def test_and_count_matches_dense_reference():
    rng = np.random.default_rng(0)
    a, b = rng.random((300, 11)) < 0.3, rng.random((300, 17)) < 0.5
    assert np.array_equal(and_count(pack_columns(a), pack_columns(b)), and_count_reference(a, b))


def test_tidlists_list_sample_ids_in_order():
    dense = np.zeros((130, 3), dtype=bool)
    dense[[0, 64, 129], 0] = True
    dense[[5], 2] = True
    ptr, idx = tidlists(pack_columns(dense), 130)
    assert ptr.tolist() == [0, 3, 3, 4]
    assert idx.tolist() == [0, 64, 129, 5]


def test_binary_matrix_api():
    dense = np.array([[1, 0], [1, 1], [0, 0]], dtype=bool)
    bm = BinaryMatrix.from_dense(dense, layer="fc")
    assert bm.shape == (3, 2) and bm.names == ["fc:0", "fc:1"]
    assert bm.support().tolist() == [2, 1]
    assert bm.density() == pytest.approx(0.5)
    assert np.array_equal(bm.select([1]).to_dense(), dense[:, [1]])
    assert np.array_equal(BinaryMatrix.from_dense(dense.astype(int)).to_dense(), dense)


def test_binary_matrix_rejects_non_binary_and_bad_shapes():
    with pytest.raises(ValueError, match="binary"):
        BinaryMatrix.from_dense(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        BinaryMatrix.from_dense(np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="names"):
        BinaryMatrix.from_dense(np.zeros((2, 2), dtype=bool), names=["a"])
