"""The method of the paper, apart from data and training.

* :mod:`.settings`: how forgetting is configured (torch-free): ``ForgetSettings`` and the
  selection objects ``DataFree``, ``Validation``, ``Fixed``;
* :mod:`.step`: the step itself (Fisher ratio eta, per-tensor steps, the perturbation);
* :mod:`.probe`: logits after many candidate steps at once, on a scratch copy of the model;
* :mod:`.selection`: how (lambda1, lambda2) and the sign are chosen;
* :mod:`.forget`: :func:`~mnemo_tutorial.core.forget.forget`, its report and its error.

Nothing here reads data or trains; importing this package loads no torch.
"""

__all__: list[str] = []
