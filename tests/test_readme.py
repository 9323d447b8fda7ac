"""The README's first example (train your own model with codes, forget a class) runs as written."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def snippet(name: str) -> str:
    text = README.read_text()
    m = re.search(rf"<!-- snippet: {name} -->\n```python\n(.*?)```\n<!-- end snippet -->", text, re.S)
    assert m, f"README has no snippet {name!r}"
    return m.group(1)


def test_own_model_snippet_is_short_and_runs(capsys):
    code = snippet("own-model")
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 10, f"the reader's snippet has {len(lines)} lines"
    import torch

    torch.manual_seed(0)  # the model's initial weights (the snippet leaves them to the reader)
    namespace: dict = {}
    import warnings

    from mnemo_tutorial.core.forget import CodesUnchecked

    with warnings.catch_warnings():  # the codes the snippet forgets with carry their record
        warnings.simplefilter("error", CodesUnchecked)
        exec(compile(code, str(README), "exec"), namespace)
    assert namespace["trained"].codes.alignment.misaligned(range(10)) == []
    result, model = namespace["result"], namespace["model"]
    assert result.model is not model
    assert result.report.status == "ok" and result.report.forget == [3]
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("ok {'before': ") and "'after': " in out
    from mnemo_tutorial import evaluate

    data = namespace["data"]
    after = evaluate(result.model, data.x_test, data.y_test, [3], 10)
    before = evaluate(model, data.x_test, data.y_test, [3], 10)
    assert after["E_F"] >= 99.0 and before["A_R"] - after["A_R"] <= 2.0, (after, before)
