import numpy as np

from interpolation.models import create_model


def test_blend_is_the_exact_mean_at_half():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    (mid,) = create_model("blend").interpolate(a, b, [0.5])
    expected = (a.astype(np.int32) + b.astype(np.int32) + 1) // 2
    assert np.array_equal(mid, expected.astype(np.uint8))


def test_blend_weights_follow_t():
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.full((2, 2, 3), 200, np.uint8)
    frames = create_model("blend").interpolate(a, b, [0.25, 0.75])
    assert [int(f[0, 0, 0]) for f in frames] == [50, 150]
