"""Data, models and training with mnemonic codes.

* :mod:`.data`: MNIST, CIFAR-10 and faces through a ladder of sources (data root, mirror,
  download), checksummed;
* :mod:`.models`: the chapters' models; :mod:`.augment`: crop and flip;
* :mod:`.profiles`: ``TrainConfig`` (a recipe for any model) and the registered profiles;
* :mod:`.loop`: the training loop with code mixing;
* :mod:`.checkpoints`: checkpoint keys, the cache, the shipped models, ``train_or_load``.
"""

__all__: list[str] = []
