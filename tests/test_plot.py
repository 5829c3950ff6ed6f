"""Plots out of the box: ``Posterior.plot`` and ``ppl run --plot`` write real images, headless."""

from __future__ import annotations

import pathlib
import struct
import zlib

import numpy as np
import pytest

import ppl
from ppl.cli import main

MODEL = """\
model m(y: real[]) {
  mu ~ normal(0, 1)
  sigma ~ half_normal(1)
  for i in 0..len(y) {
    y[i] ~ normal(mu, sigma)
  }
  return mu
}
"""
DATA = [0.1, 0.5, 1.2, 0.7]


def png_size(path: pathlib.Path) -> tuple[int, int]:
    """Width and height of a PNG, after checking its signature, chunk CRCs and that it decodes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind!r}"
        chunks.append(kind)
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks
    width, height = struct.unpack(">II", data[16:24])
    assert len(zlib.decompress(idat)) > 0
    return width, height


@pytest.fixture(scope="module")
def posterior():
    model = ppl.loads(MODEL).models["m"]
    return ppl.infer(model, DATA, method=ppl.Importance(num_particles=500), seed=1)


@pytest.mark.parametrize("kind", ["trace", "posterior", "pair"])
def test_each_kind_writes_a_png(posterior, tmp_path, kind):
    import matplotlib

    path = tmp_path / f"{kind}.png"
    figure = posterior.plot(kind, path=path)
    assert matplotlib.get_backend().lower() == "agg"        # headless: no window can open
    width, height = png_size(path)
    assert width > 100 and height > 100
    # the figure drew the sites: one axis per site and panel for trace (2 sites x 2 panels)
    if kind == "trace":
        assert len(figure.axes) == 4
    if kind == "posterior":
        assert {ax.get_title() for ax in figure.axes} == {"mu", "sigma"}
    matplotlib.pyplot.close(figure)


def test_the_image_shows_the_draws(posterior, tmp_path):
    """A posterior plot's density of mu peaks near the weighted mean of mu (the drawn line is data)."""
    import matplotlib

    figure = posterior.plot("posterior", var_names=["mu"])
    (ax,) = figure.axes
    line = max(ax.get_lines(), key=lambda ln: len(ln.get_xdata()))
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    peak = float(x[np.argmax(y)])
    assert abs(peak - float(posterior.mean("mu"))) < 3 * float(posterior.std("mu"))
    matplotlib.pyplot.close(figure)


def test_other_formats_and_var_names(posterior, tmp_path):
    import matplotlib

    pdf, svg = tmp_path / "t.pdf", tmp_path / "t.svg"
    matplotlib.pyplot.close(posterior.plot(var_names="mu", path=pdf))
    matplotlib.pyplot.close(posterior.plot("posterior", var_names=["sigma"], path=svg))
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000
    assert b"<svg" in svg.read_bytes()[:2000]


@pytest.mark.parametrize("call, message", [
    (dict(kind="violin"), "Model error: unknown plot kind 'violin'; the kinds are trace, posterior, pair"),
    (dict(kind="trac"), "Model error: unknown plot kind 'trac'; the kinds are trace, posterior, pair\n"
                        "Did you mean 'trace'?"),
    (dict(var_names=["muu"]), "Model error: no random choice is named 'muu'; the posterior has ['mu', 'sigma']\n"
                              "Did you mean 'mu'?"),
    (dict(kind="pair", var_names=["mu"]), "Model error: a pair plot needs two coordinates or more, but mu has 1\n"
                                          "Choose kind='trace' or kind='posterior', or more sites."),
    (dict(path="/nonexistent/dir/p.png"), "Output error: plot path /nonexistent/dir/p.png: the folder "
                                          "/nonexistent/dir does not exist\n"
                                          "Create it first (mkdir -p /nonexistent/dir), or write elsewhere."),
    (dict(path="{tmp}/p.gif"), "Output error: plot path {tmp}/p.gif: ppl cannot write a '.gif' file\n"
                               "Name the file with one of: .png (PNG image), .pdf (PDF), .svg (SVG), "
                               ".jpg (JPEG image), .jpeg (JPEG image)."),
])
def test_bad_plot_requests(posterior, tmp_path, call, message):
    if "path" in call:
        call = {**call, "path": call["path"].format(tmp=tmp_path)}
    with pytest.raises(ppl.PPLError) as e:
        posterior.plot(**call)
    assert str(e.value) == message.format(tmp=tmp_path)


def test_ppl_run_plot(capsys, tmp_path):
    src = tmp_path / "m.ppl"
    src.write_text(MODEL)
    data = tmp_path / "d.json"
    data.write_text('{"y": [0.1, 0.5, 1.2, 0.7]}')
    trace, pair = tmp_path / "trace.png", tmp_path / "pair.png"
    code = main(["run", str(src), "--data", str(data), "--method", "importance", "--num-samples", "300",
                 "--plot", str(trace)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"wrote {trace} (trace plot)" in out
    assert png_size(trace)[0] > 100
    code = main(["run", str(src), "--data", str(data), "--method", "importance", "--num-samples", "300",
                 "--plot", str(pair)])                          # the kind from the file's name
    out, err = capsys.readouterr()
    assert code == 0 and f"wrote {pair} (pair plot)" in out and png_size(pair)[0] > 100
    other = tmp_path / "figure.png"
    code = main(["run", str(src), "--data", str(data), "--method", "importance", "--num-samples", "300",
                 "--plot", str(other), "--plot-kind", "posterior"])
    out, err = capsys.readouterr()
    assert code == 0 and f"wrote {other} (posterior plot)" in out and png_size(other)[0] > 100


def test_ppl_run_checks_the_plot_path_before_sampling(capsys, tmp_path, monkeypatch):
    src = tmp_path / "m.ppl"
    src.write_text(MODEL)
    ran = []
    monkeypatch.setattr(ppl, "infer", lambda *a, **k: ran.append(1))
    code = main(["run", str(src), "--plot", str(tmp_path / "nope" / "t.png")])
    _, err = capsys.readouterr()
    assert code == 1 and not ran
    assert err.startswith(f"Output error: --plot {tmp_path / 'nope' / 't.png'}: the folder ")


def test_kind_from_the_file_name():
    from ppl.plot import kind_from_path

    assert kind_from_path("out/pair.png") == "pair"
    assert kind_from_path("mu_posterior.svg") == "posterior"
    assert kind_from_path("trace.png") == kind_from_path("figure.png") == "trace"


def test_a_trace_plot_draws_each_chain(tmp_path):
    import warnings

    import matplotlib

    model = ppl.loads(MODEL).models["m"]
    with warnings.catch_warnings():           # short chains: their convergence warnings are not the point
        warnings.simplefilter("ignore")
        post = ppl.infer(model, DATA, method=ppl.MH(num_samples=120, num_warmup=50, num_chains=3), seed=2)
    figure = post.plot("trace", var_names=["mu"], path=tmp_path / "chains.png")
    density, trace = figure.axes
    lines = trace.get_lines()
    assert len(lines) == 3                     # one line per chain
    drawn = np.sort(np.concatenate([ln.get_ydata() for ln in lines]))
    np.testing.assert_allclose(drawn, np.sort(np.asarray(post.samples["mu"]).ravel()), rtol=1e-6)
    assert png_size(tmp_path / "chains.png")[0] > 100
    matplotlib.pyplot.close(figure)
