from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 2

@test_case(points=None, hidden=False)
def test_q5_public(q5_choice):
    assert q5_choice is not ..., 'q5_choice: not implemented yet (set it to one letter)'
    assert isinstance(q5_choice, str) and q5_choice in ('a', 'b', 'c', 'd'), f"q5_choice {q5_choice!r}: one of the strings 'a', 'b', 'c', 'd'"

