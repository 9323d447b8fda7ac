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
        "only the first forgotten class counted as forgotten": """
            def ef_ar(preds, y, forget):
                is_f = y == list(forget)[0]
                e_f = 100.0 * (preds[is_f] != y[is_f]).float().mean().item()
                a_r = 100.0 * (preds[~is_f] == y[~is_f]).float().mean().item()
                return e_f, a_r
        """,
        "trial: E_F over the samples predicted as a forgotten class": """
            def ef_ar(preds, y, forget):
                f = torch.as_tensor(list(forget))
                by_pred, is_f = torch.isin(preds, f), torch.isin(y, f)
                e_f = 100.0 * (preds[by_pred] != y[by_pred]).float().mean().item()
                a_r = 100.0 * (preds[~is_f] == y[~is_f]).float().mean().item()
                return e_f, a_r
        """,
        "trial: calls the package": """
            def ef_ar(preds, y, forget):
                from mnemo_tutorial import forget_metrics
                r = forget_metrics(preds, y, list(forget), int(torch.cat([preds, y]).max()) + 1)
                return r["E_F"], r["A_R"]
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
        "computed with gradients (no torch.no_grad)": """
            def sample_losses(model, x, y):
                return F.cross_entropy(model(x), y, reduction="none")
        """,
        "trial: minus the logit in place of the log-softmax": """
            def sample_losses(model, x, y):
                with torch.no_grad():
                    return -model(x)[torch.arange(len(y)), y]
        """,
        "trial: calls the package": """
            def sample_losses(model, x, y):
                from mnemo_tutorial.evaluation.metrics import per_sample_loss
                return per_sample_loss(model, x, y)
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
        "trial: compares the mean losses (one pair, not all pairs)": """
            def mia_auc(loss_members, loss_nonmembers):
                lm, ln = loss_members.mean().item(), loss_nonmembers.mean().item()
                return 1.0 if lm < ln else 0.5 if lm == ln else 0.0
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
        "trial: probe fitted without the forgotten classes": """
            def probe_accuracy(feat_train, y_train, feat_test, y_test, forget):
                keep = ~np.isin(np.asarray(y_train), list(forget))
                clf = LogisticRegression(C=1.0, max_iter=1000).fit(np.asarray(feat_train)[keep], np.asarray(y_train)[keep])
                sel = np.isin(np.asarray(y_test), list(forget))
                return 100.0 * float((clf.predict(np.asarray(feat_test)[sel]) == np.asarray(y_test)[sel]).mean())
        """,
        "calls the package's probe_features": """
            def probe_accuracy(feat_train, y_train, feat_test, y_test, forget):
                from mnemo_tutorial.evaluation.audits import probe_features
                t = lambda a: torch.as_tensor(np.asarray(a))
                r = probe_features(t(feat_train), t(y_train), t(feat_test), t(y_test), list(forget), C=1.0, max_iter=1000)
                return r["forget_acc"]
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
        "trial: strict > threshold": """
            def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                work = copy.deepcopy(model)
                opt = torch.optim.SGD(work.parameters(), lr=lr)
                sel = torch.isin(y_eval, torch.as_tensor(list(forget)))
                def acc():
                    with torch.no_grad():
                        return 100.0 * (work(x_eval[sel]).argmax(1) == y_eval[sel]).float().mean().item()
                if acc() > threshold:
                    return 0
                for step in range(1, max_steps + 1):
                    loss = F.cross_entropy(work(x), y)
                    opt.zero_grad(); loss.backward(); opt.step()
                    if acc() > threshold:
                        return step
                return max_steps
        """,
        "trial: SGD with momentum 0.9": """
            def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                work = copy.deepcopy(model)
                opt = torch.optim.SGD(work.parameters(), lr=lr, momentum=0.9)
                sel = torch.isin(y_eval, torch.as_tensor(list(forget)))
                def acc():
                    with torch.no_grad():
                        return 100.0 * (work(x_eval[sel]).argmax(1) == y_eval[sel]).float().mean().item()
                if acc() >= threshold:
                    return 0
                for step in range(1, max_steps + 1):
                    loss = F.cross_entropy(work(x), y)
                    opt.zero_grad(); loss.backward(); opt.step()
                    if acc() >= threshold:
                        return step
                return max_steps
        """,
        "trial: accuracy over all evaluation samples": """
            def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                work = copy.deepcopy(model)
                opt = torch.optim.SGD(work.parameters(), lr=lr)
                def acc():
                    with torch.no_grad():
                        return 100.0 * (work(x_eval).argmax(1) == y_eval).float().mean().item()
                if acc() >= threshold:
                    return 0
                for step in range(1, max_steps + 1):
                    loss = F.cross_entropy(work(x), y)
                    opt.zero_grad(); loss.backward(); opt.step()
                    if acc() >= threshold:
                        return step
                return max_steps
        """,
        "calls the package's relearn_time": """
            def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                from mnemo_tutorial import ImageData
                from mnemo_tutorial.evaluation.audits import relearn_time
                is_f = torch.isin(y, torch.as_tensor(list(forget)))
                n = int(torch.cat([y, y_eval]).max()) + 1
                data = ImageData("given", x, y, x_eval, y_eval, [str(c) for c in range(n)])
                r = relearn_time(model, data, list(forget), forget_samples=int(is_f.sum()),
                                 retain_samples=int((~is_f).sum()), lr=lr, momentum=0.0,
                                 threshold=threshold, max_steps=max_steps, eval_samples=None)
                return r["steps"]
        """,
    },
}
