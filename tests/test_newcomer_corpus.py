"""Every input of the newcomer corpus gets a clear error or the right answer (issue 8).

The cases and how outcomes are classified are in ``tests/newcomer_corpus.py``;
``python tests/newcomer_corpus.py -v`` prints the count table and what the user
saw for every case that is not clear.
"""

import pytest

from newcomer_corpus import CASES, run_case


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c.slow else c for c in CASES],
                         ids=[c.name for c in CASES])
def test_newcomer_input_gets_a_clear_answer(case):
    kind, shown = run_case(case)
    assert kind == "clear", f"{case.name}: {kind}\n{shown[-3000:]}"


def test_the_corpus_classifies_a_silent_answer_as_silent():
    """The classifier itself can fail: a wrong expected answer is reported as silent."""
    from newcomer_corpus import COIN, Case, _near

    files = {"coin.ppl": COIN, "d.json": '{"flips": [1, 1, 0, 1]}'}
    argv = ["run", "coin.ppl", "--data", "d.json", "--method", "importance", "--num-samples", "2000"]
    assert run_case(Case("right", files, argv, error=False, answer=_near("p", 4 / 6, 0.05)))[0] == "clear"
    assert run_case(Case("wrong", files, argv, error=False, answer=_near("p", 0.1, 0.01)))[0] == "silent"
    assert run_case(Case("accepted", files, argv, must_say=("x",)))[0] == "silent"
