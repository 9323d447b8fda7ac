"""Plausible wrong answers to the codes assignment, each of which its checks must reject.

{question: {description: code that rebinds the answer in the solution notebook's namespace}};
run by ``tests/test_assignments.py``.
"""

WRONG: dict[str, dict[str, str]] = {
    "q1": {
        "ignores the distribution (always uniform)": """
            def draw_codes(num_classes, shape, seed, distribution="uniform"):
                return torch.rand((num_classes, *shape), generator=torch.Generator().manual_seed(seed))
        """,
        "one generator per class seeded with seed + c": """
            def draw_codes(num_classes, shape, seed, distribution="uniform"):
                if distribution not in ("uniform", "normal"):
                    raise ValueError(f"distribution must be 'uniform' or 'normal'; got {distribution!r}")
                f = torch.rand if distribution == "uniform" else torch.randn
                return torch.stack([f(tuple(shape), generator=torch.Generator().manual_seed(seed + c))
                                    for c in range(num_classes)])
        """,
        "no error for an unknown distribution": """
            def draw_codes(num_classes, shape, seed, distribution="uniform"):
                gen = torch.Generator().manual_seed(seed)
                size = (num_classes, *shape)
                return torch.rand(size, generator=gen) if distribution == "uniform" else torch.randn(size, generator=gen)
        """,
    },
    "q2": {
        "swaps the samples whose draw is above t_mix": """
            def mix_batch(x, y, codes, t_mix, generator=None):
                mask = torch.rand(x.shape[0], generator=generator) > t_mix
                out = x.clone()
                out[mask] = codes[y[mask]].to(x.dtype)
                return out, mask
        """,
        "changes x in place": """
            def mix_batch(x, y, codes, t_mix, generator=None):
                mask = torch.rand(x.shape[0], generator=generator) < t_mix
                x[mask] = codes[y[mask]].to(x.dtype)
                return x, mask
        """,
        "draws from the global generator, ignoring the one passed": """
            def mix_batch(x, y, codes, t_mix, generator=None):
                mask = torch.rand(x.shape[0]) < t_mix
                out = x.clone()
                out[mask] = codes[y[mask]].to(x.dtype)
                return out, mask
        """,
    },
    "q3": {
        "no code mixing": """
            def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                gen = torch.Generator().manual_seed(seed)
                opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
                model.train()
                for _ in range(epochs):
                    order = torch.randperm(len(y), generator=gen)
                    for i in range(0, len(y), 128):
                        idx = order[i:i + 128]
                        loss = F.cross_entropy(model(x[idx]), y[idx])
                        opt.zero_grad(); loss.backward(); opt.step()
                return model.eval()
        """,
        "returns the model untrained": """
            def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                return model.eval()
        """,
    },
    "q4": {
        "softmax over the codes (dim 0) instead of the classes": """
            def code_confidence(model, codes):
                with torch.no_grad():
                    return model(codes).softmax(dim=0).diagonal()
        """,
        "largest probability instead of the own class's": """
            def code_confidence(model, codes):
                with torch.no_grad():
                    return model(codes).softmax(dim=1).max(1).values
        """,
        "logits instead of probabilities": """
            def code_confidence(model, codes):
                with torch.no_grad():
                    return model(codes).diagonal()
        """,
    },
    "q5": {
        "own and fresh accuracies swapped": "own_acc, fresh_acc = fresh_acc, own_acc",
        "fractions instead of percentages": "own_acc, fresh_acc = own_acc / 100, fresh_acc / 100",
        "model trained without codes (t_mix = 0)": """
            torch.manual_seed(0)
            trained_model = train_with_codes(MLP(hidden=256), x_small, y_small, codes_tensor, 0.0, 4, seed=0)
            with torch.no_grad():
                own_acc = 100.0 * (trained_model(codes_tensor).argmax(1) == torch.arange(10)).float().mean().item()
                fresh_acc = 100.0 * (trained_model(draw_codes(10, (1, 28, 28), seed=1)).argmax(1) == torch.arange(10)).float().mean().item()
        """,
    },
}
