"""The causal, variational-inference and devices chapters run as written (the harness is
tests/test_docs.py's; this file only lets a second test worker play them)."""

import pytest

from test_docs import CHAPTERS, DOCUMENTS, play


def test_every_chapter_is_a_document():
    assert set(CHAPTERS) <= set(DOCUMENTS)


@pytest.mark.parametrize("document", CHAPTERS)
def test_chapter_runs_as_written(document, tmp_path, monkeypatch):
    play(document, tmp_path, monkeypatch)
