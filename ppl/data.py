"""Data files for ``ppl run --data`` / ``ppl check --data``: JSON objects and CSV columns.

``read_data(path)`` returns ``{name: value}`` with plain Python values (numbers,
booleans and nested lists of them), or raises :class:`DataError` pointing at
the line and column of the file where it went wrong — never a raw traceback.

JSON: one object whose keys are the model's parameter names; each value a
number, a boolean, or a rectangular (not ragged) nested array of them.

CSV: a header row of names, then one row per observation; each column becomes
a list (of ints when every value is a whole number, else of floats). A UTF-8
byte-order mark and CRLF line endings (what spreadsheets write) are accepted;
blank lines at the end are ignored, a blank line between rows is an error
(a value cannot be silently dropped), and so is a row with missing or extra
fields or a value that is not a finite number.

``check_names(data, params, ...)`` compares a file's keys with the model's
parameters: a key that differs from a missing parameter only in case (or by
a typo) gets a "did you mean".
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import pathlib
import re
from typing import Any

from ppl.stdlib.errors import PPLError, Span

__all__ = ["DataError", "read_data", "check_names"]


class DataError(PPLError):
    """A data file that cannot be read as the model's arguments."""

    kind = "Data error"


def read_data(path: str | pathlib.Path | None) -> dict[str, Any]:
    """Model arguments from a JSON object or a CSV file (one column per argument); {} without a path."""
    if path is None:
        return {}
    file = pathlib.Path(path)
    if file.is_dir():
        raise DataError(f"the data file {path} is a folder", hint="Pass a .json or .csv file to --data.")
    raw = file.read_bytes()  # FileNotFoundError: the caller says "no such file"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"the data file {path} is not UTF-8 text (an undecodable byte at line {line})",
                        hint="Save it as UTF-8 JSON or CSV.") from None
    if not text.strip():
        raise DataError(f"the data file {path} is empty",
                        hint='Write a JSON object such as {"y": [1.5, 2.0]}, or a CSV file with a header row.')
    suffix = file.suffix.lower()
    if suffix == ".json" or (suffix not in (".csv", ".tsv") and text.lstrip().startswith(("{", "["))):
        return _read_json(text, str(path))
    if suffix in (".csv", ".tsv", ".txt", ""):
        return _read_csv(text, str(path))
    raise DataError(f"the data file {path} has the extension '{suffix}', which ppl does not read",
                    hint="Use a .json file (an object) or a .csv file (one column per parameter).")


# --------------------------------------------------------------------------- JSON


def _span(path: str, text: str, line: int, column: int, end_column: int | None = None) -> Span:
    return Span(path, line, column, end_column=end_column, source=text)


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _unique_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _key_span(path: str, text: str, key: str, occurrence: int = 1) -> Span | None:
    """Where ``"key":`` is written in a JSON text (its ``occurrence``-th time), for pointing at it."""
    matches = list(re.finditer(re.escape(json.dumps(key)) + r"\s*:", text))
    if len(matches) < occurrence:
        return None
    match = matches[occurrence - 1]
    start = match.start()
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return _span(path, text, line, column, column + len(json.dumps(key)) - 1)


def _read_json(text: str, path: str) -> dict[str, Any]:
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as dup:
        raise DataError(f"the key '{dup.key}' appears twice in the data file {path}",
                        span=_key_span(path, text, dup.key, occurrence=2),
                        hint="Give each parameter one value.") from None
    except json.JSONDecodeError as err:
        raise DataError(f"the data file {path} is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})",
                        span=_span(path, text, err.lineno, err.colno),
                        hint='A data file is one JSON object, e.g. {"y": [1.5, 2.0], "n": 2}.') from None
    except RecursionError:
        raise DataError(f"the data file {path} nests its arrays too deeply to read") from None
    if not isinstance(data, dict):
        raise DataError(f"the data file {path} must hold a JSON object whose keys are the model's argument "
                        f"names, not a JSON {_json_kind(data)}",
                        hint='Write {"name": value, ...}, e.g. {"y": [1.5, 2.0]}.')
    for key, value in data.items():
        problem = _json_problem(value)
        if problem is not None:
            raise DataError(f"the value of '{key}' in the data file {path} {problem}",
                            span=_key_span(path, text, key),
                            hint="Data values are numbers, booleans, or rectangular arrays of them "
                                 "(every row of the same length).")
    return data


def _json_kind(value) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def _json_problem(value, where: str = "") -> str | None:
    """Why a JSON value is not a number, boolean or rectangular array of them (None when it is)."""
    at = f" (at {where})" if where else ""
    if isinstance(value, bool) or isinstance(value, int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"is {value}{at}, not a finite number"
    if isinstance(value, str):
        return f"is the string {value!r}{at}, not a number"
    if value is None:
        return f"is null{at}, not a number (ppl has no missing values: leave the entry out or give a number)"
    if isinstance(value, dict):
        return f"is an object{at}, not a number or an array"
    if isinstance(value, list):
        shape = None
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{i}]")
            if problem is not None:
                return problem
            item_shape = _json_shape(item)
            if shape is None:
                shape = item_shape
            elif item_shape != shape:
                return (f"is a ragged array: {where}[0] has {_describe_shape(shape)} but {where}[{i}] has "
                        f"{_describe_shape(item_shape)}")
        return None
    return f"is a {type(value).__name__}{at}"


def _json_shape(value) -> tuple:
    if isinstance(value, list):
        return (len(value),) + (_json_shape(value[0]) if value else ())
    return ()


def _describe_shape(shape: tuple) -> str:
    if not shape:
        return "a single number"
    return f"shape {shape}" if len(shape) > 1 else f"{shape[0]} entr{'y' if shape[0] == 1 else 'ies'}"


# --------------------------------------------------------------------------- CSV

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _read_csv(text: str, path: str) -> dict[str, Any]:
    lines = text.splitlines()  # \r\n, \r and \n alike; the BOM went with the decoding
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    # one row per line (a blank line reads as []); a quoted field spanning lines is refused
    for i, line in enumerate(lines):
        if line.count('"') % 2:
            raise DataError(f"line {i + 1} of {path} opens a quote that it does not close",
                            span=_span(path, text, i + 1, line.index('"') + 1),
                            hint="Write one row per line, with numbers unquoted.")
    rows = [next(csv.reader([line], delimiter=delimiter), []) for line in lines]

    def span(line: int, column: int = 1, end: int | None = None) -> Span:
        return _span(path, text, line, column, end)

    def is_blank(row) -> bool:
        return not row or all(not field.strip() for field in row)

    first = next((i for i, row in enumerate(rows) if not is_blank(row)), None)
    if first is None:
        raise DataError(f"the data file {path} has no header row (only empty fields)",
                        hint="The first row names the columns: the model's parameter names.")
    header = [name.strip() for name in rows[first]]
    if len(header) == 1 and ";" in header[0] and delimiter == ",":
        raise DataError(f"the data file {path} separates its columns with ';', not ','", span=span(first + 1),
                        hint="Save it as CSV with commas between columns and decimal points in numbers.")
    for j, name in enumerate(header):
        col = _column_of(lines[first], j, delimiter)
        if not name:
            raise DataError(f"column {j + 1} of the header of {path} has no name", span=span(first + 1, col),
                            hint="The first row names the columns: the model's parameter names.")
        if header.index(name) != j:
            raise DataError(f"the column '{name}' appears twice in the header of {path}",
                            span=span(first + 1, col, col + len(name) - 1),
                            hint="Give each column its own name: one column per parameter.")
    last = max(i for i, row in enumerate(rows) if not is_blank(row))
    if last == first:
        raise DataError(f"the data file {path} has a header ({', '.join(header)}) but no rows of data",
                        hint="Add one row per observation below the header.")
    columns: list[list[float]] = [[] for _ in header]
    for i in range(first + 1, last + 1):
        row, lineno = rows[i], i + 1
        if is_blank(row):
            raise DataError(f"line {lineno} of {path} is blank, between rows of data: a blank line would drop "
                            "a value from every column", span=span(lineno),
                            hint="Remove the blank line (ppl has no missing values: every row gives every column).")
        if len(row) != len(header):
            few = len(row) < len(header)
            names = ", ".join(f"'{n}'" for n in header[len(row):]) if few else ""
            raise DataError(
                f"line {lineno} of {path} has {len(row)} field{'s' if len(row) != 1 else ''} but the header "
                f"names {len(header)} column{'s' if len(header) != 1 else ''}"
                + (f" (missing: {names})" if few else ""),
                span=span(lineno),
                hint="Every row gives a value for every column, separated by commas.")
        for j, field in enumerate(row):
            value = field.strip()
            col = _column_of(lines[i], j, delimiter)
            where = span(lineno, col, col + max(len(field), 1) - 1)
            if not value:
                raise DataError(f"line {lineno} of {path} has no value in the column '{header[j]}'", span=where,
                                hint="Give a number, or leave the row out (ppl has no missing values).")
            if _NUMBER.fullmatch(value) is None:
                lowered = value.lower()
                if lowered in ("nan", "na", "n/a", "inf", "-inf", "+inf", "infinity", "null", "none"):
                    hint = "Give a finite number, or leave the row out (ppl has no missing or infinite values)."
                else:
                    hint = "Give a number (with a decimal point, not a comma; no units or quotes)."
                raise DataError(f"'{value}' in the column '{header[j]}' (line {lineno} of {path}) is not a number",
                                span=where, hint=hint)
            columns[j].append(float(value))
    out: dict[str, Any] = {}
    for name, col in zip(header, columns):
        out[name] = [int(v) for v in col] if all(v.is_integer() for v in col) else col
    return out


def _column_of(line: str, field: int, delimiter: str) -> int:
    """The 1-based column where field number ``field`` of a CSV line starts (delimiters in quotes aside)."""
    if field == 0:
        return 1
    count, inside = 0, False
    for k, ch in enumerate(line):
        if ch == '"':
            inside = not inside
        elif ch == delimiter and not inside:
            count += 1
            if count == field:
                return k + 2
    return len(line) + 1


# --------------------------------------------------------------------------- names


def check_names(file_keys, params: list[str], available, model_name: str, path: str | None) -> None:
    """Raise a DataError for a data key that differs from a parameter only in case (it would be
    ignored, silently), or for a parameter without data — naming a key that looks meant for it."""
    unknown = [k for k in file_keys if k not in params]
    where = f"the data file {path}" if path else "the data"
    for key in unknown:
        same = [p for p in params if p.lower() == key.lower()]
        if same:
            raise DataError(
                f"{where} has '{key}', which is not a parameter of the model '{model_name}' "
                f"({', '.join(params)}): names are case-sensitive, so it would be ignored",
                hint=f"Did you mean '{same[0]}'? Rename the key (column) '{key}' to '{same[0]}'.")
    missing = [p for p in params if p not in available]
    if not missing:
        return
    for p in missing:
        close = difflib.get_close_matches(p, unknown, n=1, cutoff=0.75)
        if close:
            raise DataError(
                f"the model '{model_name}' needs data for '{p}', and {where} has '{close[0]}', which is not "
                f"one of its parameters ({', '.join(params)})",
                hint=f"Did you mean '{p}'? Rename the key (column) '{close[0]}' to '{p}'.")
    extra = f" ({where} has {', '.join(repr(k) for k in unknown)}, which the model does not take)" \
        if unknown else ""
    raise DataError(
        f"the model '{model_name}' needs data for {', '.join(repr(m) for m in missing)}{extra}",
        hint="Pass --data FILE.json with those keys (the Stan data convention).")
