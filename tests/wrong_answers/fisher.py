"""Plausible wrong answers to the fisher assignment, each of which its checks must reject.

{question: {description: code that rebinds the answer in the solution notebook's namespace}};
run by ``tests/test_assignments.py``.
"""

WRONG: dict[str, dict[str, str]] = {
    "q1": {
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
    },
}
