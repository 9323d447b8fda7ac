"""Plausible wrong answers to the audits assignment, each of which its checks must reject.

{question: {description: code that rebinds the answer in the solution notebook's namespace}};
run by ``tests/test_assignments.py``.
"""

WRONG: dict[str, dict[str, str]] = {
    "q1": {
        "fractions instead of percentages": """
            _right = ef_ar
            def ef_ar(preds, y, forget):
                e_f, a_r = _right(preds, y, forget)
                return e_f / 100, a_r / 100
        """,
        "E_F as the accuracy on the forgotten classes": """
            _right = ef_ar
            def ef_ar(preds, y, forget):
                e_f, a_r = _right(preds, y, forget)
                return 100.0 - e_f, a_r
        """,
        "A_R over all samples, forgotten ones included": """
            _right = ef_ar
            def ef_ar(preds, y, forget):
                e_f, _ = _right(preds, y, forget)
                return e_f, 100.0 * (preds == y).float().mean().item()
        """,
    },
    "q2": {
        "mean over the samples (one number)": """
            def sample_losses(model, x, y):
                with torch.no_grad():
                    return F.cross_entropy(model(x), y)
        """,
        "minus the probability, no logarithm": """
            def sample_losses(model, x, y):
                with torch.no_grad():
                    return -model(x).softmax(1)[torch.arange(len(y)), y]
        """,
        "loss against the predicted label": """
            def sample_losses(model, x, y):
                with torch.no_grad():
                    z = model(x)
                    return F.cross_entropy(z, z.argmax(1), reduction="none")
        """,
    },
    "q3": {
        "members scored by a higher loss": """
            _right = mia_auc
            def mia_auc(loss_members, loss_nonmembers):
                return _right(loss_nonmembers, loss_members)
        """,
        "ties ignored": """
            def mia_auc(loss_members, loss_nonmembers):
                return (loss_nonmembers[None, :] > loss_members[:, None]).double().mean().item()
        """,
        "ties counted as member wins": """
            def mia_auc(loss_members, loss_nonmembers):
                return (loss_nonmembers[None, :] >= loss_members[:, None]).double().mean().item()
        """,
    },
    "q4": {
        "accuracy on the training features (train set used as test set)": """
            def probe_accuracy(feat_train, y_train, feat_test, y_test, forget):
                clf = LogisticRegression(C=1.0, max_iter=1000).fit(np.asarray(feat_train), np.asarray(y_train))
                sel = np.isin(np.asarray(y_train), list(forget))
                return 100.0 * float((clf.predict(np.asarray(feat_train)[sel]) == np.asarray(y_train)[sel]).mean())
        """,
        "probe trained on the test features": """
            def probe_accuracy(feat_train, y_train, feat_test, y_test, forget):
                clf = LogisticRegression(C=1.0, max_iter=1000).fit(np.asarray(feat_test), np.asarray(y_test))
                sel = np.isin(np.asarray(y_test), list(forget))
                return 100.0 * float((clf.predict(np.asarray(feat_test)[sel]) == np.asarray(y_test)[sel]).mean())
        """,
        "accuracy over all test samples": """
            def probe_accuracy(feat_train, y_train, feat_test, y_test, forget):
                clf = LogisticRegression(C=1.0, max_iter=1000).fit(np.asarray(feat_train), np.asarray(y_train))
                return 100.0 * float((clf.predict(np.asarray(feat_test)) == np.asarray(y_test)).mean())
        """,
    },
    "q5": {
        "fine-tunes the input model in place": """
            def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                opt = torch.optim.SGD(model.parameters(), lr=lr)
                sel = torch.isin(y_eval, torch.as_tensor(list(forget)))
                def acc():
                    with torch.no_grad():
                        return 100.0 * (model(x_eval[sel]).argmax(1) == y_eval[sel]).float().mean().item()
                if acc() >= threshold:
                    return 0
                for step in range(1, max_steps + 1):
                    loss = F.cross_entropy(model(x), y)
                    opt.zero_grad(); loss.backward(); opt.step()
                    if acc() >= threshold:
                        return step
                return max_steps
        """,
        "summed loss instead of the mean": """
            def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                work = copy.deepcopy(model)
                opt = torch.optim.SGD(work.parameters(), lr=lr)
                sel = torch.isin(y_eval, torch.as_tensor(list(forget)))
                def acc():
                    with torch.no_grad():
                        return 100.0 * (work(x_eval[sel]).argmax(1) == y_eval[sel]).float().mean().item()
                if acc() >= threshold:
                    return 0
                for step in range(1, max_steps + 1):
                    loss = F.cross_entropy(work(x), y, reduction="sum")
                    opt.zero_grad(); loss.backward(); opt.step()
                    if acc() >= threshold:
                        return step
                return max_steps
        """,
        "accuracy measured on the fine-tuning set instead of the evaluation set": """
            def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                work = copy.deepcopy(model)
                opt = torch.optim.SGD(work.parameters(), lr=lr)
                sel = torch.isin(y, torch.as_tensor(list(forget)))
                def acc():
                    with torch.no_grad():
                        return 100.0 * (work(x[sel]).argmax(1) == y[sel]).float().mean().item()
                if acc() >= threshold:
                    return 0
                for step in range(1, max_steps + 1):
                    loss = F.cross_entropy(work(x), y)
                    opt.zero_grad(); loss.backward(); opt.step()
                    if acc() >= threshold:
                        return step
                return max_steps
        """,
        "counts one step too many": """
            _right = relearn_steps
            def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                return _right(model, x, y, x_eval, y_eval, forget, lr, threshold, max_steps) + 1
        """,
    },
}
