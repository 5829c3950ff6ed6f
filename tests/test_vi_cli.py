"""`ppl run --method vi`: AutoNormal with the ELBO from the command line."""

import json
import math
import pathlib

import numpy as np
import pytest

from ppl.cli import METHODS, build_method, main

ROOT = pathlib.Path(__file__).resolve().parents[1]
COIN = ROOT / "examples" / "coin.ppl"


def test_vi_from_the_command_line(capsys, tmp_path):
    assert "vi" in METHODS
    out_file = tmp_path / "r.json"
    code = main(["run", str(COIN), "--method", "vi", "--num-samples", "2000", "--seed", "1", "--out", str(out_file)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "VI on 'coin'" in out and "lower bound" in out
    result = json.loads(out_file.read_text())
    p = np.asarray(result["samples"]["p"])
    assert p.shape == (2000,) and np.all((p > 0) & (p < 1))
    # 7 heads in 10 under Beta(1, 1): the posterior is Beta(8, 4), mean 2/3, sd 0.131; a logit-normal
    # fit has nearly its mean (well inside 0.02, which is 15 Monte Carlo standard errors of 2000 draws)
    assert abs(p.mean() - 8 / 12) < 0.02
    assert abs(p.std() - math.sqrt(8 * 4 / (12**2 * 13))) < 0.02


def test_vi_refuses_chain_options():
    from ppl.cli import CommandLineError

    with pytest.raises(CommandLineError, match="--num-chains do not go with --method vi"):
        build_method("vi", None, num_chains=2)
