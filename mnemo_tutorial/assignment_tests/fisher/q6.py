from otter.test_files import test_case

OK_FORMAT = False

name = "q6"
points = 2

@test_case(points=None, hidden=False)
def test_q6_public(q6_under, q6_over):
    for name, value in (('q6_under', q6_under), ('q6_over', q6_over)):
        assert value is not ..., f'{name}: not implemented yet (replace ... with your answer)'
        word = value.strip().lower() if isinstance(value, str) else value
        assert word in ('smaller', 'equal', 'larger'), f'{name} = {value!r}: answer one of the words "smaller", "equal", "larger"'

