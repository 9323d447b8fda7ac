"""Plausible wrong answers to the forgetting assignment, each of which its checks must reject.

{question: {description: code that rebinds the answer in the solution notebook's namespace}};
run by ``tests/test_assignments.py``.
"""

WRONG: dict[str, dict[str, str]] = {
    "q1": {
        "not normalised": """
            def class_fisher(model, codes):
                return per_sample_sq_grads(model, codes.codes, codes.labels())
        """,
        "each tensor normalised on its own": """
            def class_fisher(model, codes):
                sq = per_sample_sq_grads(model, codes.codes, codes.labels())
                return {k: v / v.flatten(1).sum(1).view(-1, *([1] * (v.dim() - 1))) for k, v in sq.items()}
        """,
        "normalised over the classes instead of over the weights": """
            def class_fisher(model, codes):
                sq = per_sample_sq_grads(model, codes.codes, codes.labels())
                return {k: v / v.sum(0, keepdim=True) for k, v in sq.items()}
        """,
    },
    "q2": {
        "f_R averaged over all classes, forgotten ones included": """
            def sensitivity_ratio(fisher, forget):
                return {k: v[list(forget)].mean(0) / (v.mean(0) + 1e-16) for k, v in fisher.items()}
        """,
        "ratio inverted (f_R / f_F)": """
            def sensitivity_ratio(fisher, forget):
                keep = [c for c in range(next(iter(fisher.values())).shape[0]) if c not in forget]
                return {k: v[keep].mean(0) / (v[list(forget)].mean(0) + 1e-16) for k, v in fisher.items()}
        """,
        "sum over the remaining classes instead of the mean": """
            def sensitivity_ratio(fisher, forget):
                keep = [c for c in range(next(iter(fisher.values())).shape[0]) if c not in forget]
                return {k: v[list(forget)].mean(0) / (v[keep].sum(0) + 1e-16) for k, v in fisher.items()}
        """,
    },
    "q3": {
        "max instead of min": """
            def per_layer_steps(eta, lambda1, lambda2):
                return {k: max(lambda1, lambda2 / float(v.max())) for k, v in eta.items()}
        """,
        "one global max over all tensors": """
            def per_layer_steps(eta, lambda1, lambda2):
                top = max(float(v.max()) for v in eta.values())
                return {k: min(lambda1, lambda2 / top) for k in eta}
        """,
        "lambda2 times the max instead of divided by it": """
            def per_layer_steps(eta, lambda1, lambda2):
                return {k: min(lambda1, lambda2 * float(v.max())) for k, v in eta.items()}
        """,
    },
    "q4": {
        "changes the input model in place": """
            def perturb(model, eta, steps, sign):
                with torch.no_grad():
                    for name, p in model.named_parameters():
                        p.add_(sign * steps[name] * eta[name].to(p.dtype))
                return model
        """,
        "ignores the sign": """
            def perturb(model, eta, steps, sign):
                new = copy.deepcopy(model)
                with torch.no_grad():
                    for name, p in new.named_parameters():
                        p.add_(steps[name] * eta[name].to(p.dtype))
                return new
        """,
        "adds the step alone, without eta": """
            def perturb(model, eta, steps, sign):
                new = copy.deepcopy(model)
                with torch.no_grad():
                    for name, p in new.named_parameters():
                        p.add_(sign * steps[name])
                return new
        """,
    },
    "q5": {
        "the smallest lambdas on the grids": """
            def choose_lambdas(model, codes, forget):
                return LAMBDA1_GRID[0], LAMBDA2_GRID[0], -1
        """,
        "the largest lambdas on the grids": """
            def choose_lambdas(model, codes, forget):
                return LAMBDA1_GRID[-1], LAMBDA2_GRID[-1], -1
        """,
        "the solution's lambdas with the opposite sign": """
            _right = choose_lambdas
            def choose_lambdas(model, codes, forget):
                l1, l2, s = _right(model, codes, forget)
                return l1, l2, -s
        """,
    },
}
