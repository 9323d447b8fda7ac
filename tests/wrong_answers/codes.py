"""Plausible wrong answers to the codes assignment, each of which its checks must reject.

{question: {description: code that rebinds the answer in the solution notebook's namespace}};
run by ``tests/test_assignments.py``. Labels starting "trial: " are the mistakes a lecturer's
trial of the assignment found passing earlier versions of the checks.
"""

WRONG: dict[str, dict[str, str]] = {
    "q1": {
        "trial: seeds torch's global generator instead of its own": """
            def draw_codes(num_classes, shape, seed, distribution="uniform"):
                if distribution not in ("uniform", "normal"):
                    raise ValueError(f"distribution must be 'uniform' or 'normal'; got {distribution!r}")
                torch.manual_seed(seed)
                size = (num_classes, *shape)
                return torch.rand(size) if distribution == "uniform" else torch.randn(size)
        """,
        "trial: calls the package": """
            from mnemo_tutorial import MnemonicCodes

            def draw_codes(num_classes, shape, seed, distribution="uniform"):
                return MnemonicCodes.random(num_classes, shape, seed, distribution).codes
        """,
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
        "generator never seeded (the seed is ignored)": """
            def draw_codes(num_classes, shape, seed, distribution="uniform"):
                if distribution not in ("uniform", "normal"):
                    raise ValueError(f"distribution must be 'uniform' or 'normal'; got {distribution!r}")
                gen = torch.Generator()
                size = (num_classes, *shape)
                return torch.rand(size, generator=gen) if distribution == "uniform" else torch.randn(size, generator=gen)
        """,
        "the error message does not name the argument": """
            def draw_codes(num_classes, shape, seed, distribution="uniform"):
                if distribution not in ("uniform", "normal"):
                    raise ValueError("unknown kind of codes")
                gen = torch.Generator().manual_seed(seed)
                size = (num_classes, *shape)
                return torch.rand(size, generator=gen) if distribution == "uniform" else torch.randn(size, generator=gen)
        """,
    },
    "q2": {
        "trial: the next class's code, codes[(y + 1) % C]": """
            def mix_batch(x, y, codes, t_mix, generator=None):
                mask = torch.rand(x.shape[0], generator=generator) < t_mix
                out = x.clone()
                out[mask] = codes[(y[mask] + 1) % len(codes)].to(x.dtype)
                return out, mask
        """,
        "trial: calls the package": """
            from mnemo_tutorial import MnemonicCodes

            def mix_batch(x, y, codes, t_mix, generator=None):
                return MnemonicCodes(codes).mix_batch(x, y, t_mix, generator)
        """,
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
        "one draw for the whole batch": """
            def mix_batch(x, y, codes, t_mix, generator=None):
                swap = bool(torch.rand(1, generator=generator) < t_mix)
                mask = torch.full((x.shape[0],), swap)
                out = x.clone()
                out[mask] = codes[y[mask]].to(x.dtype)
                return out, mask
        """,
    },
    "q3": {
        "trial: gradients never zeroed": """
            def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                gen = torch.Generator().manual_seed(seed)
                opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
                model.train()
                for _ in range(epochs):
                    order = torch.randperm(len(y), generator=gen)
                    for i in range(0, len(y), 128):
                        idx = order[i:i + 128]
                        xb, _ = mix_batch(x[idx], y[idx], codes, t_mix, gen)
                        loss = F.cross_entropy(model(xb), y[idx])
                        loss.backward()
                        opt.step()
                return model.eval()
        """,
        "trial: t_mix applied per batch, not per sample": """
            def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                gen = torch.Generator().manual_seed(seed)
                opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
                model.train()
                for _ in range(epochs):
                    order = torch.randperm(len(y), generator=gen)
                    for i in range(0, len(y), 128):
                        idx = order[i:i + 128]
                        xb = x[idx]
                        if torch.rand(1, generator=gen).item() < t_mix:
                            xb = codes[y[idx]]
                        loss = F.cross_entropy(model(xb), y[idx])
                        opt.zero_grad(); loss.backward(); opt.step()
                return model.eval()
        """,
        "trial: no shuffling, unseeded mixing": """
            def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
                model.train()
                for _ in range(epochs):
                    for i in range(0, len(y), 128):
                        xb, _ = mix_batch(x[i:i + 128], y[i:i + 128], codes, t_mix)
                        loss = F.cross_entropy(model(xb), y[i:i + 128])
                        opt.zero_grad(); loss.backward(); opt.step()
                return model.eval()
        """,
        "trial: calls the package": """
            from mnemo_tutorial import MnemonicCodes, TrainConfig, train_model

            def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                cfg = TrainConfig(epochs=epochs, batch_size=128, optimizer="adamw", lr=3e-3,
                                  weight_decay=0.01, t_mix=t_mix)
                result = train_model(model, x, y, MnemonicCodes(codes), cfg, seed=seed,
                                     device="cpu", progress=False)
                return result.model.eval()
        """,
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
        "labels not shuffled along with the inputs": """
            def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                gen = torch.Generator().manual_seed(seed)
                opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
                model.train()
                for _ in range(epochs):
                    order = torch.randperm(len(y), generator=gen)
                    for i in range(0, len(y), 128):
                        idx = order[i:i + 128]
                        xb, _ = mix_batch(x[idx], y[idx], codes, t_mix, gen)
                        loss = F.cross_entropy(model(xb), y[i:i + 128])
                        opt.zero_grad(); loss.backward(); opt.step()
                return model.eval()
        """,
        "separate generators for shuffling and mixing": """
            def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                gen = torch.Generator().manual_seed(seed)
                mix_gen = torch.Generator().manual_seed(seed)
                opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
                model.train()
                for _ in range(epochs):
                    order = torch.randperm(len(y), generator=gen)
                    for i in range(0, len(y), 128):
                        idx = order[i:i + 128]
                        xb, _ = mix_batch(x[idx], y[idx], codes, t_mix, mix_gen)
                        loss = F.cross_entropy(model(xb), y[idx])
                        opt.zero_grad(); loss.backward(); opt.step()
                return model.eval()
        """,
        "generator re-seeded every epoch (the same order each epoch)": """
            def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
                model.train()
                for _ in range(epochs):
                    gen = torch.Generator().manual_seed(seed)
                    order = torch.randperm(len(y), generator=gen)
                    for i in range(0, len(y), 128):
                        idx = order[i:i + 128]
                        xb, _ = mix_batch(x[idx], y[idx], codes, t_mix, gen)
                        loss = F.cross_entropy(model(xb), y[idx])
                        opt.zero_grad(); loss.backward(); opt.step()
                return model.eval()
        """,
        "plain SGD instead of AdamW": """
            def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                gen = torch.Generator().manual_seed(seed)
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
                model.train()
                for _ in range(epochs):
                    order = torch.randperm(len(y), generator=gen)
                    for i in range(0, len(y), 128):
                        idx = order[i:i + 128]
                        xb, _ = mix_batch(x[idx], y[idx], codes, t_mix, gen)
                        loss = F.cross_entropy(model(xb), y[idx])
                        opt.zero_grad(); loss.backward(); opt.step()
                return model.eval()
        """,
    },
    "q4": {
        "trial: log-softmax instead of softmax": """
            def code_confidence(model, codes):
                with torch.no_grad():
                    return model(codes).log_softmax(dim=1).diagonal()
        """,
        "trial: calls the package": """
            from mnemo_tutorial.evaluation.metrics import batched_eval

            def code_confidence(model, codes):
                probs = batched_eval(model, lambda c: model(c).softmax(dim=1), codes)
                return probs.diagonal()
        """,
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
        "keeps the gradient graph": """
            def code_confidence(model, codes):
                return model(codes).softmax(dim=1).diagonal()
        """,
    },
    "q5": {
        "trial: fresh codes drawn from N(0, 1)": """
            with torch.no_grad():
                fresh_acc = 100.0 * (trained_model(torch.randn(10, 1, 28, 28)).argmax(1) == torch.arange(10)).float().mean().item()
        """,
        "fresh codes from draw_codes(..., distribution='normal')": """
            with torch.no_grad():
                fresh = draw_codes(10, (1, 28, 28), seed=1, distribution="normal")
                fresh_acc = 100.0 * (trained_model(fresh).argmax(1) == torch.arange(10)).float().mean().item()
        """,
        "own and fresh accuracies swapped": "own_acc, fresh_acc = fresh_acc, own_acc",
        "fractions instead of percentages": "own_acc, fresh_acc = own_acc / 100, fresh_acc / 100",
        "the 'fresh' codes are the training codes (seed 0)": """
            with torch.no_grad():
                fresh_acc = 100.0 * (trained_model(draw_codes(10, (1, 28, 28), seed=0)).argmax(1) == torch.arange(10)).float().mean().item()
        """,
        "model trained without codes (t_mix = 0)": """
            torch.manual_seed(0)
            trained_model = train_with_codes(MLP(hidden=256), x_small, y_small, codes_tensor, 0.0, 4, seed=0)
            with torch.no_grad():
                own_acc = 100.0 * (trained_model(codes_tensor).argmax(1) == torch.arange(10)).float().mean().item()
                fresh_acc = 100.0 * (trained_model(draw_codes(10, (1, 28, 28), seed=1)).argmax(1) == torch.arange(10)).float().mean().item()
        """,
    },
}
