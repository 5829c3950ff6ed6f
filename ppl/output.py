"""Result files of ``ppl run --out``: ArviZ netCDF, JSON, or CSV (one column per scalar coordinate).

``check_path(path, formats)`` runs *before* sampling, so that a run is never
lost to a typo in the path: the folder must exist and be writable, the name
must not be a folder, and the extension must be one ppl writes.

CSV follows CmdStan's layout: one row per draw, the columns ``chain`` and
``draw``, then one column per scalar coordinate of every site, named like
ArviZ labels them (``theta[0]``, ``L[1,2]``; indices start at 0, as in
``.ppl`` code and the summary table), then ``return`` (``return[0]``, ...)
for numeric return values, then ``log_weight`` for weighted methods and the
sampler's statistics (``accept_prob__``, ``diverging__``, ...).
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
from typing import Iterable

import numpy as np

from ppl.stdlib.errors import PPLError

__all__ = ["OutputError", "RESULT_FORMATS", "check_path", "write_results", "csv_columns"]

#: extensions ``--out`` writes, with what they hold
RESULT_FORMATS = {".nc": "ArviZ netCDF", ".json": "JSON", ".csv": "CSV, one column per coordinate"}


class OutputError(PPLError):
    """An output path that cannot be written."""

    kind = "Output error"


def check_path(path: str, formats: dict[str, str] = RESULT_FORMATS, option: str = "--out") -> pathlib.Path:
    """The path, checked to be writable with a supported extension; raise OutputError otherwise."""
    file = pathlib.Path(path).expanduser()
    suffix = file.suffix.lower()
    kinds = ", ".join(f"{ext} ({what})" for ext, what in formats.items())
    if suffix not in formats:
        what = f"a {suffix!r} file" if suffix else "a file without an extension"
        raise OutputError(f"{option} {path}: ppl cannot write {what}",
                          hint=f"Name the file with one of: {kinds}.")
    if file.is_dir():
        raise OutputError(f"{option} {path} is a folder", hint="Give the name of a file to write.")
    folder = file.parent if str(file.parent) else pathlib.Path(".")
    if not folder.exists():
        raise OutputError(f"{option} {path}: the folder {folder} does not exist",
                          hint=f"Create it first (mkdir -p {folder}), or write elsewhere.")
    if not folder.is_dir():
        raise OutputError(f"{option} {path}: {folder} is not a folder", hint="Write into an existing folder.")
    if not os.access(folder, os.W_OK | os.X_OK) or (file.exists() and not os.access(file, os.W_OK)):
        raise OutputError(f"{option} {path}: no permission to write there", hint="Write to a folder you own.")
    return file


def write_results(post, path: str) -> None:
    """Write a posterior as ``.nc`` (ArviZ netCDF), ``.csv`` (one column per coordinate) or ``.json``.

    Should the write fail after all (the disk filled up, the folder went away while sampling ran),
    the results go to a file of the same kind in the temporary folder, and the error says where.
    """
    file = check_path(path)
    try:
        _write(post, file)
    except OSError as err:
        import tempfile

        reason = err.strerror or str(err)
        fd, spare = tempfile.mkstemp(prefix="ppl-results-", suffix=file.suffix.lower())
        os.close(fd)
        try:
            _write(post, pathlib.Path(spare))
        except OSError:
            raise OutputError(f"could not write {path}: {reason}",
                              hint="Free some space or choose another --out path, and run again.") from None
        raise OutputError(f"could not write {path}: {reason}; the results are saved in {spare} instead",
                          hint=f"Move {spare} where you want it.") from None


def _write(post, file: pathlib.Path) -> None:
    suffix = file.suffix.lower()
    if suffix == ".nc":
        post.to_arviz().to_netcdf(str(file))
    elif suffix == ".csv":
        _write_csv(post, file)
    else:
        file.write_text(json.dumps(_json_results(post), indent=1))


def _json_results(post) -> dict:
    numeric = {k: np.asarray(v) for k, v in post.samples.items() if np.asarray(v).dtype != object}
    return {
        "model": post.model_name,
        "method": post.method,
        "engine": post.engine,
        "log_evidence": post.log_evidence,
        "samples": {k: v.tolist() for k, v in numeric.items()},
        "log_weights": None if post.log_weights is None else np.asarray(post.log_weights).tolist(),
        "summary": {k: {"mean": np.asarray(post.mean(k)).tolist(), "std": np.asarray(post.std(k)).tolist()}
                    for k in numeric},
    }


def element_labels(name: str, shape: tuple) -> list[str]:
    """The name of each element of a site of this shape, in row-major order: ``z[1,2]``; the name
    itself for a scalar (the summary table and the CSV and JSON exports use these)."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]


def _numeric_returns(post, lead: tuple):
    """The return values as (label, array shaped lead + event) pairs, numeric leaves only."""
    import jax

    returns = post.returns
    if returns is None or isinstance(returns, list):
        if isinstance(returns, list):  # eager engine: one Python value per draw
            try:
                arr = np.asarray([np.asarray(v, dtype=np.float64) for v in returns])
            except (TypeError, ValueError):
                return []
            return [("return", arr.reshape(lead + arr.shape[1:]))] if arr.shape[:1] == (int(np.prod(lead)),) else []
        return []
    leaves = jax.tree.leaves(returns)
    out = []
    for k, leaf in enumerate(leaves):
        arr = np.asarray(leaf)
        if arr.dtype == object or arr.shape[: len(lead)] != lead:
            continue
        out.append(("return" if len(leaves) == 1 else f"return.{k}", arr))
    return out


def csv_columns(post) -> tuple[list[str], list[np.ndarray]]:
    """CSV header and one flat column per name (rows: chains × draws, chain-major)."""
    chains = bool(post.result.chains)
    numeric = {k: np.asarray(v) for k, v in post.samples.items() if np.asarray(v).dtype != object}
    first = next(iter(numeric.values()), None)
    if first is None:
        raise OutputError("the posterior has no numeric draws to write as CSV",
                          hint="Write .json or .nc instead, or see posterior.probs() in Python.")
    lead = first.shape[:2] if chains else first.shape[:1]
    n_chains, n_draws = (lead if chains else (1, lead[0]))
    rows = n_chains * n_draws
    names = ["chain", "draw"]
    cols = [np.repeat(np.arange(n_chains), n_draws), np.tile(np.arange(n_draws), n_chains)]

    def add(name: str, arr: np.ndarray) -> None:
        flat = arr.reshape((rows,) + arr.shape[len(lead):])
        event = flat.shape[1:]
        flat = flat.reshape(rows, -1)
        for j, label in enumerate(element_labels(name, event)):
            names.append(label)
            cols.append(flat[:, j])

    for name, arr in numeric.items():
        add(name, arr)
    for name, arr in _numeric_returns(post, lead):
        add(name, arr)
    if post.log_weights is not None:
        names.append("log_weight")
        cols.append(np.asarray(post.log_weights, dtype=np.float64).reshape(rows))
    for stat, values in post.sample_stats.items():
        arr = np.asarray(values)
        if stat.startswith("_") or arr.shape != lead or arr.dtype == object:
            continue
        names.append(f"{stat}__")
        cols.append(arr.reshape(rows))
    return names, cols


def _format(x) -> str:
    """A value as CSV text: whole numbers bare, floats at their dtype's shortest round-trip form."""
    if isinstance(x, (bool, np.bool_)):
        return str(int(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return str(x) if isinstance(x, np.floating) else repr(float(x))


def _write_csv(post, file: pathlib.Path) -> None:
    names, cols = csv_columns(post)
    with file.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows(_rows(cols))


def _rows(cols: list[np.ndarray]) -> Iterable[list[str]]:
    for i in range(len(cols[0])):
        yield [_format(c[i]) for c in cols]
