"""Plots of a posterior through ArviZ: trace, posterior (densities with intervals) and pair plots.

``plot(post, kind="trace", var_names=None, path=None)`` returns the matplotlib
figure and, with a ``path``, saves it (PNG, PDF, SVG, JPEG: from the
extension). Figures are drawn with matplotlib's Agg backend (no window ever
opens, so it works on servers and in tests) unless the user already chose a
backend; ``ppl run FILE --plot trace.png`` uses the same function.
"""

from __future__ import annotations

import difflib
import pathlib
import warnings

from ppl.stdlib.errors import ModelError

__all__ = ["KINDS", "IMAGE_FORMATS", "plot", "kind_from_path"]

#: plot kinds and the ArviZ function that draws each
KINDS = {"trace": "plot_trace", "posterior": "plot_posterior", "pair": "plot_pair"}
#: extensions a figure can be saved as
IMAGE_FORMATS = {".png": "PNG image", ".pdf": "PDF", ".svg": "SVG", ".jpg": "JPEG image", ".jpeg": "JPEG image"}


def _pyplot():
    """matplotlib.pyplot on a headless backend (Agg), unless a backend was already chosen."""
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - a dependency of ppl
        raise ModelError("plotting needs matplotlib, which is not installed",
                         hint="pip install matplotlib") from None
    import sys

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def kind_from_path(path: str) -> str:
    """The plot kind a file name asks for (``posterior.png`` -> posterior, ``x_pair.svg`` -> pair), else trace."""
    stem = pathlib.Path(path).stem.lower()
    for kind in ("pair", "posterior", "trace"):
        if kind in stem:
            return kind
    return "trace"


def _check_kind(kind: str) -> str:
    if not isinstance(kind, str) or kind.lower() not in KINDS:
        close = difflib.get_close_matches(str(kind).lower(), list(KINDS), n=1)
        raise ModelError(f"unknown plot kind {kind!r}; the kinds are {', '.join(KINDS)}",
                         hint=f"Did you mean {close[0]!r}?" if close else None)
    return kind.lower()


def _var_names(post, var_names) -> tuple[list[str] | None, list[str] | None]:
    if var_names is None:
        return None, None
    if isinstance(var_names, str):
        var_names = [var_names]
    names = []
    plottable = {k for k, v in post.samples.items() if getattr(v, "dtype", None) != object}
    for name in var_names:
        if name not in post.samples:
            close = difflib.get_close_matches(name, list(post.samples), n=1)
            raise ModelError(f"no random choice is named {name!r}; the posterior has {sorted(post.samples)}",
                             hint=f"Did you mean {close[0]!r}?" if close else None)
        if name not in plottable:
            raise ModelError(f"the site {name!r} holds no numbers (its values are Python objects) to plot")
        names.append(name)
    return names, [n.replace("/", ".") for n in names]  # as Posterior.to_arviz names sub-model sites


def plot(post, kind: str = "trace", var_names=None, path: str | None = None):
    """Draw ``kind`` ('trace', 'posterior' or 'pair') of the sites ``var_names`` (default: all); save to ``path``.

    Returns the matplotlib figure. A pair plot needs at least two scalar coordinates.
    """
    kind = _check_kind(kind)
    chosen, names = _var_names(post, var_names)
    if path is not None:
        from ppl.output import check_path

        path = check_path(str(path), IMAGE_FORMATS, option="plot path")
    if not any(getattr(v, "dtype", None) != object for v in post.samples.values()):
        raise ModelError("the posterior has no numeric draws to plot")
    if kind == "pair":
        import numpy as np

        chosen = chosen or [k for k, v in post.samples.items() if np.asarray(v).dtype != object]
        lead = 2 if post.result.chains else 1
        coords = sum(int(np.prod(np.asarray(post.samples[k]).shape[lead:])) for k in chosen)
        if coords < 2:
            raise ModelError(f"a pair plot needs two coordinates or more, but {', '.join(chosen)} "
                             f"{'has' if len(chosen) == 1 else 'have'} {coords}",
                             hint="Choose kind='trace' or kind='posterior', or more sites.")
    plt = _pyplot()
    import arviz as az

    data = post.to_arviz()
    draw = getattr(az, KINDS[kind])
    before = set(plt.get_fignums())
    result = draw(data, var_names=names) if names is not None else draw(data)
    figure = _figure_of(result, plt, before)
    if figure.get_layout_engine() is None:  # keep titles off the tick labels of the panel above
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "not compatible with tight_layout" for odd axes: keep as drawn
            figure.tight_layout()
    if path is not None:
        figure.savefig(str(path))
    return figure


def _figure_of(result, plt, before):
    """The matplotlib figure an ArviZ plot drew (its return type varies between ArviZ versions)."""
    import numpy as np

    fig = getattr(result, "figure", None) or getattr(result, "get_figure", lambda: None)()
    if fig is None and hasattr(result, "viz"):  # ArviZ >= 1.0: a PlotCollection
        fig = getattr(result.viz, "figure", None)
        fig = getattr(fig, "item", lambda: fig)() if fig is not None else None
    if fig is None:
        axes = np.ravel(np.asarray(result, dtype=object)) if result is not None else []
        for ax in axes:
            if hasattr(ax, "get_figure"):
                fig = ax.get_figure()
                break
    if fig is None:
        new = [n for n in plt.get_fignums() if n not in before]
        fig = plt.figure(new[-1]) if new else plt.gcf()
    while getattr(fig, "get_figure", None) is not None and fig.get_figure() is not fig \
            and fig.get_figure() is not None:  # a subfigure: its top-level figure
        fig = fig.get_figure()
    return fig
