"""The exact integer matrix product behind the fixed-point backend, on every kernel path."""

import pytest
import torch

from snnkit.arith import int_matmul


@pytest.mark.parametrize("k", [1, 2, 3, 8, 17, 64])
@pytest.mark.parametrize("n", [1, 5, 128])
@pytest.mark.parametrize("m", [1, 16, 17, 33, 200])
def test_int_matmul_is_exact_for_every_shape_and_layout(m, k, n):
    g = torch.Generator().manual_seed(m * 1000 + k * 10 + n)
    x = torch.rand(m, k, generator=g) < 0.4
    w = torch.randint(-128, 128, (n, k), generator=g)
    ref = x.long() @ w.T
    for wt in (w.T, w.T.contiguous(), w.reshape(n, k).T.clone()):  # views with odd strides too
        assert torch.equal(int_matmul(x, wt, 128 * k), ref)
    wide = torch.randint(-(2**15), 2**15, (n, k), generator=g)  # 16-bit weights: float path
    assert torch.equal(int_matmul(x, wide.T, 2**15 * k), x.long() @ wide.T)
    huge = torch.randint(-(2**40), 2**40, (n, k), generator=g)  # beyond float64: int64 path
    assert torch.equal(int_matmul(x, huge.T, 2**40 * k), x.long() @ huge.T)


def test_snnkit_convert_stays_the_function():
    import snnkit
    import snnkit.convert  # noqa: F401 - importing the submodule must not shadow the function

    assert callable(snnkit.convert) and snnkit.convert.__name__ == "convert"


def test_both_arithmetics_satisfy_the_step_functions_protocol():
    from snnkit.arith import Arith, FixedArith, FloatArith
    from snnkit.network import Quantization

    fixed = FixedArith(Quantization())
    assert isinstance(FloatArith(), Arith) and isinstance(fixed, Arith)
    x = torch.tensor([40000, -40000, 100])
    assert fixed.sat(x).tolist() == [32767, -32768, 100]  # 16-bit states saturate
    assert fixed.decay(torch.tensor([4096]), 2048).tolist() == [2048]  # 0.5 in 12 bits
