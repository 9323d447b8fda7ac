"""mnemo_tutorial: the companion package of the one-shot unlearning tutorial.

One-shot machine unlearning with mnemonic codes (Yamashita, Yamada, Shibata, ACML 2024,
arXiv:2306.05670): codes, Fisher information, the forgetting step, metrics, data, models
and the training loop used by every chapter of the book.
"""
from .codes import CodeMixDataset, MnemonicCodes
from .data import ChecksumError, DataNotFoundError, ImageData, load_dataset, load_mnist
from .fisher import code_fisher, fisher_by_class, fisher_loop, oracle_fisher, per_sample_sq_grads
from .metrics import confusion_matrix, evaluate, forget_metrics, per_class_accuracy, predict
from .models import MLP, make_model
from .profiles import Profile, get_profile
from .train import TrainResult, train_model, train_or_load
from .unlearn import ForgetReport, ForgetResult, forget, layer_steps, sensitivity
from .utils import get_device, seed_everything

__version__ = "0.1.0"

__all__ = [
    "CodeMixDataset", "MnemonicCodes", "ChecksumError", "DataNotFoundError", "ImageData",
    "load_dataset", "load_mnist", "code_fisher", "fisher_by_class", "fisher_loop", "oracle_fisher",
    "per_sample_sq_grads", "confusion_matrix", "evaluate", "forget_metrics", "per_class_accuracy",
    "predict", "MLP", "make_model", "Profile", "get_profile", "TrainResult", "train_model",
    "train_or_load", "ForgetReport", "ForgetResult", "forget", "layer_steps", "sensitivity",
    "get_device", "seed_everything",
]
