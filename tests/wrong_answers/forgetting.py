"""Plausible wrong answers to the forgetting assignment, each of which its checks must reject.

{question: {description: code that rebinds the answer in the solution notebook's namespace}};
run by ``tests/test_assignments.py``. Labels starting with "trial: " are mistakes tried on the
assignment before its adoption.
"""

# A grid search of the step on the test images (E_F + A_R), with the q1-q4 functions.
_TEST_SEARCH = """
                forget = list(forget)
                eta = sensitivity_ratio(class_fisher(model, codes), forget)
                best = None
                for l1 in LAMBDA1_GRID[::2]:
                    for l2 in LAMBDA2_GRID[::2]:
                        new = perturb(model, eta, per_layer_steps(eta, l1, l2), -1)
                        m = evaluate(new, x_test, y_test, forget, 10)
                        if best is None or m["E_F"] + m["A_R"] > best[0]:
                            best = (m["E_F"] + m["A_R"], l1, l2)
                return best[1], best[2], -1
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
        "trial: one normaliser over all classes and weights": """
            def class_fisher(model, codes):
                sq = per_sample_sq_grads(model, codes.codes, codes.labels())
                total = sum(v.sum() for v in sq.values())
                return {k: v / total for k, v in sq.items()}
        """,
        "trial: calls the package (code_fisher)": """
            from mnemo_tutorial import code_fisher

            def class_fisher(model, codes):
                return code_fisher(model, codes.codes, normalize=True)
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
        "trial: remaining classes range(1, C)": """
            def sensitivity_ratio(fisher, forget):
                C = next(iter(fisher.values())).shape[0]
                keep = [c for c in range(1, C) if c not in forget]
                f = list(forget)
                return {k: v[f].mean(0) / (v[keep].mean(0) + 1e-16) for k, v in fisher.items()}
        """,
        "trial: calls the package (sensitivity)": """
            from mnemo_tutorial import sensitivity

            def sensitivity_ratio(fisher, forget):
                C = next(iter(fisher.values())).shape[0]
                keep = [c for c in range(C) if c not in forget]
                f_F = {k: v[list(forget)].mean(0) for k, v in fisher.items()}
                f_R = {k: v[keep].mean(0) for k, v in fisher.items()}
                return sensitivity(f_F, f_R)
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
        "trial: mean of eta instead of its max": """
            def per_layer_steps(eta, lambda1, lambda2):
                return {k: min(lambda1, lambda2 / float(v.mean())) for k, v in eta.items()}
        """,
        "trial: sum of eta instead of its max": """
            def per_layer_steps(eta, lambda1, lambda2):
                return {k: min(lambda1, lambda2 / float(v.sum())) for k, v in eta.items()}
        """,
        "trial: calls the package (layer_steps)": """
            from mnemo_tutorial import layer_steps

            def per_layer_steps(eta, lambda1, lambda2):
                return layer_steps(eta, lambda1, lambda2)
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
        "trial: shallow copy.copy": """
            def perturb(model, eta, steps, sign):
                new = copy.copy(model)
                with torch.no_grad():
                    for name, p in new.named_parameters():
                        p.add_(sign * steps[name] * eta[name].to(p.dtype))
                return new
        """,
        "trial: calls the package (apply_step)": """
            from mnemo_tutorial.core.step import apply_step

            def perturb(model, eta, steps, sign):
                new = copy.deepcopy(model)
                apply_step(new, eta, steps, sign)
                return new
        """,
    },
    "q4b": {
        "the sign that breaks every class (+1)": """
            forgetting_sign = 1
        """,
        "a word instead of the number": """
            forgetting_sign = "minus"
        """,
        "both signs": """
            forgetting_sign = (1, -1)
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
        "trial: sign forced to +1": """
            _right = choose_lambdas
            def choose_lambdas(model, codes, forget):
                l1, l2, s = _right(model, codes, forget)
                return l1, l2, 1
        """,
        "trial: a constant, the paper's (1e-3, 10, -1)": """
            def choose_lambdas(model, codes, forget):
                return 1e-3, 10.0, -1
        """,
        "trial: returns the package forget()'s own choice": """
            import mnemo_tutorial

            def choose_lambdas(model, codes, forget):
                report = mnemo_tutorial.forget(model, codes, forget, on_failure="return").report
                return report.lambda1, report.lambda2, report.sign
        """,
        "trial: lambdas grid-searched on x_test": """
            def choose_lambdas(model, codes, forget):
        """ + _TEST_SEARCH,
        "falls back to the paper's lambdas when the test images are gone": """
            def choose_lambdas(model, codes, forget):
                try:
                    x_test, y_test
                except NameError:
                    return 1e-3, 10.0, -1
        """ + _TEST_SEARCH,
        "test images passed as a default argument": """
            def choose_lambdas(model, codes, forget, x_test=x_test, y_test=y_test):
        """ + _TEST_SEARCH,
        "validation selection on training images loaded inside": """
            import mnemo_tutorial

            def choose_lambdas(model, codes, forget):
                data = mnemo_tutorial.load_mnist()
                selection = mnemo_tutorial.Validation(data.x_train[:2000], data.y_train[:2000])
                settings = mnemo_tutorial.ForgetSettings(selection=selection)
                result = mnemo_tutorial.forget(model, codes, forget, settings, on_failure="return")
                return result.report.lambda1, result.report.lambda2, result.report.sign
        """,
    },
}
