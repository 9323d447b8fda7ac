from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = [2]

@test_case(points=None, hidden=False)
def test_q5_public(choose_lambdas, model, codes, x_test, y_test):
    import contextlib
    import sys
    import torch
    from mnemo_tutorial import Fixed, ForgetSettings, evaluate, forget

    def is_images(v):
        """A tensor or array with more rows than any set of codes, a data set or a loader."""
        if isinstance(v, (list, tuple)):
            return any((is_images(u) for u in v))
        if type(v).__name__ in ('ImageData', 'DataLoader') or isinstance(v, torch.utils.data.Dataset):
            return True
        try:
            shape = tuple(getattr(v, 'shape', ()))
        except Exception:
            return False
        return len(shape) > 0 and isinstance(shape[0], int) and (shape[0] > 16)

    def carried(fn):
        """Default arguments and closure cells of fn (images there are in its reach too)."""
        cells = []
        for cell in getattr(fn, '__closure__', None) or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:
                pass
        return list(getattr(fn, '__defaults__', None) or ()) + list((getattr(fn, '__kwdefaults__', None) or {}).values()) + cells

    @contextlib.contextmanager
    def codes_only(fn):
        """While fn runs: no images among the notebook's names, the package's data loaders and
        forget()'s own selections of the step (DataFree, Validation) refuse to run."""
        from mnemo_tutorial.core import selection
        from mnemo_tutorial.training import data as data_module
        import mnemo_tutorial
        for n in mnemo_tutorial.__all__:
            if n.startswith('load_'):
                getattr(mnemo_tutorial, n)
        names = getattr(fn, '__globals__', {})
        dunder = [k for k in names if k.startswith('__') and k.endswith('__') and (len(k) > 4)]
        held = {k: names.pop(k) for k in [k for k, v in names.items() if k not in dunder and is_images(v)]}
        banned = {id(getattr(selection, n)): f"forget()'s own {n}" for n in ('select_data_free', 'select_on_validation')}
        banned.update({id(f): n for n, f in vars(data_module).items() if n.startswith('load_') and callable(f)})

        def refuse(what):

            def refused(*args, **kwargs):
                raise AssertionError(f'choose_lambdas called {what}: use the model and the codes only, with a rule of your own')
            return refused
        spaces = [vars(m) for k, m in list(sys.modules.items()) if m is not None and k.split('.')[0] == 'mnemo_tutorial']
        patched = []
        for space in spaces + [names]:
            for k, v in list(space.items()):
                if id(v) in banned:
                    patched.append((space, k, v))
                    space[k] = refuse(banned[id(v)])
        try:
            yield
        finally:
            for space, k, v in reversed(patched):
                space[k] = v
            names.update(held)

    def ask(fn, *args):
        """fn(*args) with the images out of its reach -> (lambda1, lambda2, sign), or None."""
        assert not any((is_images(v) for v in carried(fn))), 'choose_lambdas carries images in a default argument or a closure: use the model and the codes only'
        before = {k: v.detach().clone() for k, v in args[0].state_dict().items()}
        failed = None
        with codes_only(fn):
            try:
                answer = fn(*args)
            except AssertionError:
                raise
            except Exception as exc:
                failed = f'{type(exc).__name__}: {exc}'
        if failed is not None:
            try:
                fn(*args)
            except Exception as exc:
                raise AssertionError(f'choose_lambdas raised {type(exc).__name__}: {exc}') from None
            raise AssertionError(f"choose_lambdas works with the notebook's images in reach but fails without them ({failed}): use the model and the codes only")
        after = args[0].state_dict()
        assert all((torch.equal(v, after[k]) for k, v in before.items())), 'choose_lambdas changed the model it was given: work on a copy'
        if answer is None:
            return None
        assert isinstance(answer, (tuple, list)) and len(answer) == 3, f'return (lambda1, lambda2, sign); got {answer!r}'
        l1, l2, s = (float(answer[0]), float(answer[1]), answer[2])
        assert l1 > 0 and l2 > 0, f'lambda1 and lambda2 must be positive; got {l1:g}, {l2:g}'
        assert s in (1, -1), f'sign must be +1 or -1; got {s!r}'
        return (l1, l2, int(s))
    c = 3
    answer = ask(choose_lambdas, model, codes, [c])
    assert answer is not None, 'choose_lambdas returned None: not implemented yet'
    l1, l2, s = answer
    settings = ForgetSettings(selection=Fixed(l1, l2), sign=s)
    new = forget(model, codes, [c], settings, on_failure='return').model
    m0 = evaluate(model, x_test, y_test, [c], 10)
    m1 = evaluate(new, x_test, y_test, [c], 10)
    assert m1['E_F'] >= 90.0, f"E_F {m1['E_F']:.1f} % on digit {c}: the digit is not forgotten"
    assert m1['A_R'] >= m0['A_R'] - 5.0, f"A_R {m1['A_R']:.1f} % against {m0['A_R']:.1f} % before: too much damage"

