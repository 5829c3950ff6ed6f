"""A Python model's program keeps what the model read from globals and closures as constants. A
user who changed such a value (``NOISE = 0.1``, or a global array in place) and ran ``ppl.infer``
again got the posterior of the old value, without a word: the program is traced again when they
change (ppl/outside.py), and its constants are its own copies (ppl/trace.py), not JAX's cached
canonical form of the user's array."""

from __future__ import annotations

import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.outside import fingerprint

Y = np.array([1.5, 2.0, 0.5, 1.0])
NOISE = 1.0
OFFSET = np.zeros(4)


@ppl.model
def noisy(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    with ppl.plate("d", len(y)):
        ppl.observe("y", dist.Normal(mu, NOISE), y)
    return mu


def _offset():
    return OFFSET


@ppl.model
def shifted(y):
    b = ppl.sample("b", dist.Normal(0.0, 10.0))
    with ppl.plate("d", len(y)):
        ppl.observe("y", dist.Normal(b + _offset(), 1.0), y)  # read through a helper function
    return b


def _normal_posterior(y, noise, prior_sd=10.0):
    precision = 1 / prior_sd ** 2 + len(y) / noise ** 2
    return (np.sum(y) / noise ** 2) / precision, precision ** -0.5


def test_a_changed_global_number_is_read_again():
    global NOISE
    try:
        for noise in (1.0, 0.1):
            NOISE = noise
            mean, sd = _normal_posterior(Y, noise)
            logp = float(noisy.log_density({"mu": 1.0}, Y))
            expected = -0.5 * np.log(2 * np.pi * 100) - 0.5 / 100 + np.sum(
                -0.5 * np.log(2 * np.pi * noise ** 2) - 0.5 * ((Y - 1.0) / noise) ** 2)
            assert logp == pytest.approx(expected, rel=1e-5)
            post = ppl.infer(noisy, Y, method=ppl.NUTS(num_warmup=300, num_samples=1000, num_chains=2,
                                                       progress=False), seed=0)
            # 2000 draws; the bound allows an effective size of 200
            assert abs(float(post.mean("mu")) - mean) < 4 * sd / np.sqrt(200)
            assert float(post.std("mu")) == pytest.approx(sd, rel=0.2)
    finally:
        NOISE = 1.0


def test_a_global_array_changed_in_place_is_read_again():
    try:
        for shift in (0.0, 1.0):
            OFFSET[:] = shift
            assert float(shifted.log_density({"b": 0.5}, Y)) == pytest.approx(
                -0.5 * np.log(2 * np.pi * 100) - 0.5 * 0.25 / 100
                + np.sum(-0.5 * np.log(2 * np.pi) - 0.5 * (Y - 0.5 - shift) ** 2), rel=1e-5)
    finally:
        OFFSET[:] = 0.0


def test_the_fingerprint_follows_numbers_arrays_closures_and_called_functions():
    scale = np.ones(3)

    def helper(x):
        return x * scale

    def model_fn(x):
        return helper(x) + NOISE

    before = fingerprint(model_fn)
    scale[1] = 2.0
    assert fingerprint(model_fn) != before  # through the helper's closure
    assert fingerprint(model_fn) == fingerprint(model_fn)  # the same values, the same key
    assert fingerprint(lambda x: x + 1) == ()  # nothing read from outside


def test_a_nan_read_from_outside_keys_the_same_program_each_time():
    missing = float("nan")

    def model_fn(x):
        return x + missing

    assert fingerprint(model_fn) == fingerprint(model_fn)
