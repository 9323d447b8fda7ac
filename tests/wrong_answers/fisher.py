"""Plausible wrong answers to the fisher assignment, each of which its checks must reject.

{question: {description: code that rebinds the answer in the solution notebook's namespace}};
run by ``tests/test_assignments.py``. Labels starting with "trial: " are the mistakes a
lecturer tried on the assignment before adopting it.
"""

WRONG: dict[str, dict[str, str]] = {
    "q1": {
        "trial: backward() per sample, .grad never zeroed": """
            def sq_grads_loop(model, x, y):
                rows = {n: [] for n, _ in model.named_parameters()}
                for i in range(len(y)):
                    F.cross_entropy(model(x[i:i+1]), y[i:i+1]).backward()
                    for n, p in model.named_parameters():
                        rows[n].append(p.grad.detach().clone() ** 2)
                return {n: torch.stack(v) for n, v in rows.items()}
        """,
        "trial: calls the package": """
            from mnemo_tutorial import fisher_loop
            def sq_grads_loop(model, x, y):
                return fisher_loop(model, x, y)
        """,
        "backward() with zero_grad: right values, .grad left on the model": """
            def sq_grads_loop(model, x, y):
                rows = {n: [] for n, _ in model.named_parameters()}
                for i in range(len(y)):
                    model.zero_grad()
                    F.cross_entropy(model(x[i:i+1]), y[i:i+1]).backward()
                    for n, p in model.named_parameters():
                        rows[n].append(p.grad.detach().clone() ** 2)
                return {n: torch.stack(v) for n, v in rows.items()}
        """,
        "square of the batch-mean gradient, repeated for every sample": """
            def sq_grads_loop(model, x, y):
                params = dict(model.named_parameters())
                g = torch.autograd.grad(F.cross_entropy(model(x), y), list(params.values()))
                return {n: (gi ** 2).expand(len(y), *gi.shape).clone() for n, gi in zip(params, g)}
        """,
        "gradient not squared": """
            def sq_grads_loop(model, x, y):
                params = dict(model.named_parameters())
                rows = {n: [] for n in params}
                for i in range(len(y)):
                    g = torch.autograd.grad(F.cross_entropy(model(x[i:i+1]), y[i:i+1]), list(params.values()))
                    for n, gi in zip(params, g):
                        rows[n].append(gi)
                return {n: torch.stack(v) for n, v in rows.items()}
        """,
        "absolute value instead of the square": """
            _right = sq_grads_loop
            def sq_grads_loop(model, x, y):
                return {n: v.sqrt() for n, v in _right(model, x, y).items()}
        """,
    },
    "q2": {
        "trial: minus the logit instead of the log-softmax": """
            def sq_grads_vmap(model, x, y):
                params = {n: p.detach() for n, p in model.named_parameters()}
                def loss_one(p, xi, yi):
                    out = functional_call(model, p, (xi.unsqueeze(0),))
                    return -out.gather(1, yi.view(1, 1)).squeeze()
                per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
                return {n: g ** 2 for n, g in per_sample.items()}
        """,
        "trial: calls the package": """
            from mnemo_tutorial.core.fisher import per_sample_sq_grads as _package_version
            def sq_grads_vmap(model, x, y):
                return _package_version(model, x, y)
        """,
        "grad(loss_one) in a Python loop over the samples (no vmap)": """
            def sq_grads_vmap(model, x, y):
                params = {n: p.detach() for n, p in model.named_parameters()}
                def loss_one(p, xi, yi):
                    return F.cross_entropy(functional_call(model, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))
                rows = [grad(loss_one)(params, x[i], y[i]) for i in range(len(y))]
                return {n: torch.stack([r[n] for r in rows]) ** 2 for n in params}
        """,
        "gradient not squared": """
            def sq_grads_vmap(model, x, y):
                params = {n: p.detach() for n, p in model.named_parameters()}
                def loss_one(p, xi, yi):
                    return F.cross_entropy(functional_call(model, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))
                return dict(vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y))
        """,
        "summed over the samples (no per-sample axis)": """
            _right = sq_grads_vmap
            def sq_grads_vmap(model, x, y):
                return {n: v.sum(0) for n, v in _right(model, x, y).items()}
        """,
        "the model's predicted label instead of the true one": """
            _right = sq_grads_vmap
            def sq_grads_vmap(model, x, y):
                with torch.no_grad():
                    y_hat = model(x).argmax(1)
                return _right(model, x, y_hat)
        """,
    },
    "q3": {
        "trial: divides by N - 1": """
            def diag_fisher(model, x, y):
                return {n: v.sum(0) / (len(y) - 1) for n, v in per_sample_sq_grads(model, x, y).items()}
        """,
        "trial: calls the package's whole Fisher": """
            from mnemo_tutorial import oracle_fisher
            def diag_fisher(model, x, y):
                return oracle_fisher(model, x, y)
        """,
        "sum over the samples instead of the mean": """
            def diag_fisher(model, x, y):
                return {n: v.sum(0) for n, v in per_sample_sq_grads(model, x, y).items()}
        """,
        "square of the mean gradient": """
            def diag_fisher(model, x, y):
                params = dict(model.named_parameters())
                g = torch.autograd.grad(F.cross_entropy(model(x), y), list(params.values()))
                return {n: gi.detach() ** 2 for n, gi in zip(params, g)}
        """,
        "mean of the absolute gradient (square missing)": """
            def diag_fisher(model, x, y):
                return {n: v.sqrt().mean(0) for n, v in per_sample_sq_grads(model, x, y).items()}
        """,
    },
    "q4": {
        "trial: sigma(1 - sigma) averaged apart from x x^T": """
            def logistic_fisher(X, w):
                q = torch.sigmoid(X @ w)
                return (q * (1 - q)).mean() * (X.T @ X) / X.shape[0]
        """,
        "autograd's Hessian instead of the closed form": """
            def logistic_fisher(X, w):
                zeros = torch.zeros(X.shape[0], dtype=X.dtype)
                return torch.autograd.functional.hessian(
                    lambda v: F.binary_cross_entropy_with_logits(X @ v, zeros), w)
        """,
        "sum over the samples instead of the mean": """
            def logistic_fisher(X, w):
                q = torch.sigmoid(X @ w)
                return (X * (q * (1 - q))[:, None]).T @ X
        """,
        "missing the sigma(1 - sigma) weight": """
            def logistic_fisher(X, w):
                return X.T @ X / X.shape[0]
        """,
        "sigma squared instead of sigma(1 - sigma)": """
            def logistic_fisher(X, w):
                q = torch.sigmoid(X @ w)
                return (X * (q ** 2)[:, None]).T @ X / X.shape[0]
        """,
    },
    "q5": {
        "trial: labels as +-1 in the residual": """
            def logistic_emp_fisher(X, y, w):
                q = torch.sigmoid(X @ w)
                return (X * ((q - (2 * y - 1)) ** 2)[:, None]).T @ X / X.shape[0]
        """,
        "the true Fisher's weight sigma(1 - sigma)": """
            def logistic_emp_fisher(X, y, w):
                q = torch.sigmoid(X @ w)
                return (X * (q * (1 - q))[:, None]).T @ X / X.shape[0]
        """,
        "residual not squared": """
            def logistic_emp_fisher(X, y, w):
                q = torch.sigmoid(X @ w)
                return (X * (q - y)[:, None]).T @ X / X.shape[0]
        """,
        "sum over the samples instead of the mean": """
            def logistic_emp_fisher(X, y, w):
                q = torch.sigmoid(X @ w)
                return (X * ((q - y) ** 2)[:, None]).T @ X
        """,
        "outer product of the mean gradient (square of the mean)": """
            def logistic_emp_fisher(X, y, w):
                g = (X * (torch.sigmoid(X @ w) - y)[:, None]).mean(0)
                return torch.outer(g, g)
        """,
    },
    "q6": {
        "the two directions swapped": """
            q6_under, q6_over = "larger", "smaller"
        """,
        "larger in both cases": """
            q6_under, q6_over = "larger", "larger"
        """,
        "equal when under-confident": """
            q6_under, q6_over = "equal", "larger"
        """,
        "synonyms instead of the words asked for": """
            q6_under, q6_over = "lower", "higher"
        """,
        "a number (the ratio of the diagonals) instead of a word": """
            q6_under, q6_over = 0.48, 10.9
        """,
    },
}
