"""megu_lib: a tested, reproducible companion to "MeGU: Machine-Guided Unlearning with
Target Feature Disentanglement".

Public entry points::

    data = load_dataset("fashion_mnist")
    request = make_request(data, "class", forget="Shirt")
    model = build_model("small_cnn", data)
    train_model(model, data.train_x, data.train_y, "fast")      # or fit_model(data, ...) with caching
    new_model, seconds, details = unlearn("retrain", model, data, request)
    metrics = evaluate(new_model, data, request)
"""
from .cache import Cache
from .checkpoints import fit_model
from .concepts import TransitionMatrix, estimate_transition_matrix
from .data import Dataset, load_dataset, load_image_folder
from .errors import MeguError
from .judges import build_prompt, get_judge, list_judges
from .methods import UnlearnResult, get_method, list_methods, unlearn
from .metrics import evaluate, gap_to_reference, per_class_accuracy
from .models import build_model, count_parameters
from .perturb import perturbing_labels
from .requests import SCENARIOS, Request, make_request
from .training import PRESETS, TrainConfig, predict_logits, resolve_device, seed_everything, train_config, train_model

__version__ = "0.1.0"

__all__ = [
    "MeguError", "Dataset", "load_dataset", "load_image_folder", "build_model", "count_parameters",
    "PRESETS", "TrainConfig", "predict_logits", "resolve_device", "seed_everything", "train_config",
    "train_model", "SCENARIOS", "Request", "make_request", "evaluate", "gap_to_reference",
    "per_class_accuracy", "Cache",
    "fit_model", "list_methods", "get_method", "unlearn", "UnlearnResult", "TransitionMatrix", "build_prompt",
    "estimate_transition_matrix", "get_judge", "list_judges", "perturbing_labels",
]
