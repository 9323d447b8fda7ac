"""Plausible wrong answers to the removal assignment, each of which its checks must reject.

{question: {description: code that rebinds the answer in the solution notebook's namespace}};
run by ``tests/test_assignments.py``.
"""

WRONG: dict[str, dict[str, str]] = {
    "q1": {
        "calls the package": """
            from mnemo_tutorial.methods.controls import suppression_shift as _package_shift
            def suppression_shift(logits, forget, margin):
                return _package_shift(logits, forget, margin)
        """,
        "each class checked on its own code only": """
            def suppression_shift(logits, forget, margin):
                forget = list(forget)
                remaining = [r for r in range(logits.shape[1]) if r not in forget]
                rows = logits[forget]
                best = rows[:, remaining].amax(1)
                return (rows[range(len(forget)), forget] - best + margin).clamp_min(0.0)
        """,
        "best of every other class, forgotten ones included": """
            def suppression_shift(logits, forget, margin):
                forget = list(forget)
                out = []
                for c in forget:
                    need = []
                    for k in forget:
                        others = [r for r in range(logits.shape[1]) if r != c]
                        need.append(logits[k, c] - logits[k, others].max() + margin)
                    out.append(max(0.0, float(max(need))))
                return torch.tensor(out)
        """,
        "no clamp at zero (raises a class that is hidden already)": """
            def suppression_shift(logits, forget, margin):
                forget = list(forget)
                remaining = [r for r in range(logits.shape[1]) if r not in forget]
                rows = logits[forget]
                best = rows[:, remaining].amax(1, keepdim=True)
                return (rows[:, forget] - best + margin).amax(0)
        """,
        "margin subtracted instead of added": """
            def suppression_shift(logits, forget, margin):
                forget = list(forget)
                remaining = [r for r in range(logits.shape[1]) if r not in forget]
                rows = logits[forget]
                best = rows[:, remaining].amax(1, keepdim=True)
                return (rows[:, forget] - best - margin).amax(0).clamp_min(0.0)
        """,
        "rows and columns swapped (codes read down the columns)": """
            _right = suppression_shift
            def suppression_shift(logits, forget, margin):
                return _right(logits.T, forget, margin)
        """,
    },
    "q2": {
        "calls the package": """
            from mnemo_tutorial.methods.controls import suppress as _package_suppress
            def suppress_model(model, code_x, forget, margin=8.0):
                return _package_suppress(model, code_x, forget, margin).model
        """,
        "edits the input model in place": """
            def suppress_model(model, code_x, forget, margin=8.0):
                with torch.no_grad():
                    shift = suppression_shift(model(code_x), forget, margin)
                    model.fc2.bias[list(forget)] -= shift.to(model.fc2.bias.dtype)
                return model
        """,
        "shallow copy.copy (the copy shares the input's tensors)": """
            def suppress_model(model, code_x, forget, margin=8.0):
                with torch.no_grad():
                    shift = suppression_shift(model(code_x), forget, margin)
                new = copy.copy(model)
                with torch.no_grad():
                    new.fc2.bias[list(forget)] -= shift.to(new.fc2.bias.dtype)
                return new
        """,
        "every class's bias lowered": """
            def suppress_model(model, code_x, forget, margin=8.0):
                with torch.no_grad():
                    shift = suppression_shift(model(code_x), forget, margin)
                new = copy.deepcopy(model)
                with torch.no_grad():
                    new.fc2.bias -= shift.max().to(new.fc2.bias.dtype)
                return new
        """,
        "margin argument ignored (always 8)": """
            def suppress_model(model, code_x, forget, margin=8.0):
                with torch.no_grad():
                    shift = suppression_shift(model(code_x), forget, 8.0)
                new = copy.deepcopy(model)
                with torch.no_grad():
                    new.fc2.bias[list(forget)] -= shift.to(new.fc2.bias.dtype)
                return new
        """,
        "the shift added to the bias": """
            def suppress_model(model, code_x, forget, margin=8.0):
                with torch.no_grad():
                    shift = suppression_shift(model(code_x), forget, margin)
                new = copy.deepcopy(model)
                with torch.no_grad():
                    new.fc2.bias[list(forget)] += shift.to(new.fc2.bias.dtype)
                return new
        """,
    },
    "q3": {
        "calls the package": """
            from mnemo_tutorial.evaluation.removal import js_divergence as _package_js
            def js_divergence(p, q):
                return _package_js(p, q)
        """,
        "KL(p || q) instead of JS": """
            def js_divergence(p, q):
                return (p * (p / q).log()).sum(1)
        """,
        "log base 2 (bits, not nats)": """
            import math
            _right = js_divergence
            def js_divergence(p, q):
                return _right(p, q) / math.log(2)
        """,
        "halves left out (KL(p || m) + KL(q || m))": """
            _right = js_divergence
            def js_divergence(p, q):
                return 2 * _right(p, q)
        """,
        "0 log 0 left to give nan": """
            def js_divergence(p, q):
                m = 0.5 * (p + q)
                return 0.5 * (p * (p / m).log()).sum(1) + 0.5 * (q * (q / m).log()).sum(1)
        """,
        "one number: the mean over the rows": """
            _right = js_divergence
            def js_divergence(p, q):
                return _right(p, q).mean()
        """,
    },
    "q4": {
        "calls the package": """
            from mnemo_tutorial.evaluation.removal import js_divergence as _package_js
            def js_to_reference(model, reference, x, y, forget):
                sel = torch.isin(y, torch.as_tensor(list(forget)))
                with torch.no_grad():
                    p = F.softmax(model(x[sel]).double(), dim=1)
                    q = F.softmax(reference(x[sel]).double(), dim=1)
                return _package_js(p, q).mean().item()
        """,
        "every sample, not only the forgotten class's": """
            def js_to_reference(model, reference, x, y, forget):
                with torch.no_grad():
                    p = F.softmax(model(x).double(), dim=1)
                    q = F.softmax(reference(x).double(), dim=1)
                return js_divergence(p, q).mean().item()
        """,
        "samples chosen by the model's prediction, not the label": """
            def js_to_reference(model, reference, x, y, forget):
                with torch.no_grad():
                    sel = torch.isin(model(x).argmax(1), torch.as_tensor(list(forget)))
                    p = F.softmax(model(x[sel]).double(), dim=1)
                    q = F.softmax(reference(x[sel]).double(), dim=1)
                return js_divergence(p, q).mean().item()
        """,
        "sum over the samples instead of the mean": """
            def js_to_reference(model, reference, x, y, forget):
                sel = torch.isin(y, torch.as_tensor(list(forget)))
                with torch.no_grad():
                    p = F.softmax(model(x[sel]).double(), dim=1)
                    q = F.softmax(reference(x[sel]).double(), dim=1)
                return js_divergence(p, q).sum().item()
        """,
        "log-probabilities (log_softmax) instead of probabilities": """
            def js_to_reference(model, reference, x, y, forget):
                sel = torch.isin(y, torch.as_tensor(list(forget)))
                with torch.no_grad():
                    p = F.log_softmax(model(x[sel]).double(), dim=1)
                    q = F.log_softmax(reference(x[sel]).double(), dim=1)
                return js_divergence(p, q).mean().item()
        """,
        "JS of the temperature-scaled outputs (softmax of logits / 2)": """
            def js_to_reference(model, reference, x, y, forget):
                sel = torch.isin(y, torch.as_tensor(list(forget)))
                with torch.no_grad():
                    p = F.softmax(model(x[sel]).double() / 2, dim=1)
                    q = F.softmax(reference(x[sel]).double() / 2, dim=1)
                return js_divergence(p, q).mean().item()
        """,
    },
    "q5": {
        "not separated (a)": 'q5_choice = "a"',
        "one-shot with retrain (b)": 'q5_choice = "b"',
        "one-shot between the two (c)": 'q5_choice = "c"',
        "the letter in parentheses": 'q5_choice = "(d)"',
        "the position as a number instead of a letter": "q5_choice = -0.02",
    },
}
