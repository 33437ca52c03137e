"""Concept judges and the transition matrix (MeGU step 1), offline (HF_HUB_OFFLINE=1).

The paper's judge (``vlm``) and ``clip`` run through their real loading and scoring code
on tiny randomly initialised models built from configs and saved to a local folder.
"""
import json

import pytest
import torch

from megu_lib import MeguError, make_request
from megu_lib.concepts import TransitionMatrix, check_transition_matrix, estimate_transition_matrix
from megu_lib.judges import PAPER_QUESTION, build_prompt, get_judge, list_judges, pluralize

# The paper's prompt as the paper gives it, placeholders and all.
SPEC_PROMPT = [
    "Question: This image <IMG_l> shows a photo of <label_l>, True or False? Answer: True;",
    "Question: This image <IMG_p> shows a photo of <label_l>, True or False? Answer: False;",
    "Question: This image <IMG_query_k> shows a photo of <label_l>, True or False? Answer:",
]


# --------------------------------------------------------------------------- tiny HF models
def _word_tokenizer(words, **special):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    named = [v for v in special.values() if isinstance(v, str)]
    named += [v for d in special.values() if isinstance(d, dict) for v in d.values()]
    specials = ["<pad>", "<unk>"] + named
    vocab = {w: i for i, w in enumerate(dict.fromkeys(specials + list(words)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # splits "True;" into "True", ";"
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", **special), vocab


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    """A random Llava (CLIP vision tower + 2-layer Llama, hidden size 32) saved to a folder."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    words = "Question This image shows a photo of True False or Answer ; : , ? tops footwear bags".split()
    tok, vocab = _word_tokenizer(words, extra_special_tokens={"image_token": "<image>"})
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=28, patch_size=14)
    text = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=2, vocab_size=len(vocab), pad_token_id=0)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 28},
                                                                  crop_size={"height": 28, "width": 28}),
                               tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1)
    folder = tmp_path_factory.mktemp("tiny_vlm")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random CLIP (2 layers, hidden size 32) with a word-level tokenizer, saved to a folder."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor
    words = "a photo of t-shirt top trouser pullover dress coat sandal shirt sneaker bag ankle boot / -".split()
    tok, vocab = _word_tokenizer(words, bos_token="<s>", eos_token="</s>")
    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         vocab_size=len(vocab), max_position_embeddings=32, pad_token_id=0,
                         bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=28, patch_size=14),
        projection_dim=16)
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 28},
                                                                 crop_size={"height": 28, "width": 28}), tokenizer=tok)
    folder = tmp_path_factory.mktemp("tiny_clip")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _check_normalised(T: TransitionMatrix):
    """Values in [0, 1]; own label 0; each row's candidates span exactly [0, 1] (or tie at 1)."""
    m = check_transition_matrix(T, len(T.concepts), len(T.labels))
    assert (m >= 0).all() and (m <= 1).all()
    for k in range(len(T.concepts)):
        own = int(T.own_label[k])
        assert m[k, own] == 0
        cand = torch.cat([m[k, :own], m[k, own + 1:]])
        assert (cand.max() == 1) and (cand.min() == 0 or (cand == 1).all())


# --------------------------------------------------------------------------- the prompt
def test_prompt_is_the_papers_verbatim():
    expected = "\n".join(SPEC_PROMPT)
    for placeholder in ("<IMG_l>", "<IMG_p>", "<IMG_query_k>"):
        expected = expected.replace(placeholder, "<image>")
    assert build_prompt("<label_l>") == expected
    assert build_prompt("Sneaker", image_token="<img>").splitlines()[0] == \
        "Question: This image <img> shows a photo of Sneaker, True or False? Answer: True;"
    assert build_prompt("Bag").count("<image>") == 3 and build_prompt("Bag").endswith("Answer:")
    assert PAPER_QUESTION.format(image="<IMG_query_k>", label="<label_l>") == SPEC_PROMPT[2]


def test_registry_and_pluralize():
    assert list_judges() == ["vlm", "clip", "text", "features", "uniform"]
    assert get_judge("vlm").needs_weights and not get_judge("features").needs_weights
    with pytest.raises(MeguError, match="use one of vlm, clip, text, features, uniform"):
        get_judge("oracle")
    assert [pluralize(n) for n in ("T-shirt/top", "Dress", "Ankle boot", "baby", "mouse", "aquarium_fish",
                                   "bottoms & dresses", "footwear", "bus", "boy", "vehicles_1")] == \
        ["T-shirts/tops", "Dresses", "Ankle boots", "babies", "mice", "aquarium fish",
         "bottoms & dresses", "footwear", "buses", "boys", "vehicles 1"]


# --------------------------------------------------------------------------- judges
@pytest.mark.slow
def test_vlm_judge_tiny_llava(small, tiny_vlm):
    T = estimate_transition_matrix(small, "vlm", level="coarse", model_id=str(tiny_vlm), n_exemplars=2,
                                   batch_size=16, cache=False)
    assert T.shape == (10, 4) and T.concept_level == "fine" and T.level == "coarse"
    assert ((T.raw > 0) & (T.raw < 1)).all()  # P(True) / (P(True) + P(False))
    assert T.details["n_prompts"] == 10 * 2 * 4
    assert T.details["answer_tokens"] == {"True": ["True"], "False": ["False"]}
    _check_normalised(T)
    # the same draws whatever the batch size
    T1 = estimate_transition_matrix(small, "vlm", level="coarse", model_id=str(tiny_vlm), n_exemplars=2,
                                    batch_size=7, cache=False)
    assert torch.allclose(T.raw, T1.raw, atol=1e-5)


def test_clip_judge_tiny_clip(small, tiny_clip, monkeypatch):
    monkeypatch.setenv("MEGU_CLIP_MODEL", str(tiny_clip))  # the environment variable route
    T = estimate_transition_matrix(small, "clip", n_exemplars=3, cache=False)
    assert T.shape == (10, 10) and T.model_id == str(tiny_clip)
    assert (T.raw.abs() <= 1 + 1e-5).all()  # cosines
    _check_normalised(T)
    P = estimate_transition_matrix(small, "clip", n_exemplars=3, cache=False, score="softmax")
    assert torch.allclose(P.raw.sum(1), torch.ones(10), atol=1e-4)  # zero-shot probabilities over labels


def test_text_judge_ranks_footwear_together(small):
    T = estimate_transition_matrix(small, "text", cache=False)
    assert T.shape == (10, 10) and T.judge == "text"
    _check_normalised(T)
    row = T.to_frame().loc["Sneaker"]
    assert row["Sandal"] > row["Trouser"] and row["Ankle boot"] > row["Trouser"]
    assert {name for name, _ in T.nearest("Sneaker", top=2)} == {"Sandal", "Ankle boot"}
    assert T.nearest("T-shirt/top", top=1)[0][0] == "Shirt"


@pytest.mark.slow
def test_features_judge(small, trained_small):
    T = estimate_transition_matrix(small, "features", model=trained_small, n_exemplars=20, cache=False)
    assert T.shape == (10, 10) and T.model_id.startswith("state:")
    _check_normalised(T)
    assert T.nearest("Sneaker", top=1)[0][0] in ("Sandal", "Ankle boot")
    with pytest.raises(MeguError, match="predicts 10 classes"):  # the subclass scenario needs a coarse model
        estimate_transition_matrix(small, "features", model=trained_small, level="coarse")


def test_subclass_and_class_shapes(small):
    # subclass scenario: fine concepts x coarse labels, own superclass excluded
    r = make_request(small, "subclass", forget="Shirt")
    S = estimate_transition_matrix(small, "uniform", request=r, cache=False)
    assert S.shape == (10, 4) and S.concepts == small.classes and S.labels == small.coarse_classes
    assert torch.equal(S.own_label, small.coarse_of_fine())
    assert S.matrix.sum(1).eq(3).all() and S.matrix[small.classes.index("Shirt"), 0] == 0
    rows = S.rows(small, r.forget_idx)
    assert rows.shape == (len(r.forget_idx), 4) and (rows[:, 0] == 0).all()
    assert estimate_transition_matrix(small, "uniform", level="coarse", cache=False).shape == (10, 4)
    # class scenario: square, the model's labels on both sides
    C = estimate_transition_matrix(small, "uniform", request=make_request(small, "class", forget="Shirt"), cache=False)
    assert C.shape == (10, 10) and torch.equal(C.matrix, 1 - torch.eye(10))
    assert C.to_frame().shape == (10, 10) and C.to_frame().index.name == "concept"


def test_cache_reuses_and_keys(small, tmp_path):
    a = estimate_transition_matrix(small, "text", n_exemplars=2, cache=tmp_path)
    assert not a.from_cache
    metas = [json.loads(p.read_text()) for p in (tmp_path / "transition").glob("*.json")]
    assert len(metas) == 1 and metas[0]["key"]["judge"] == "text" and metas[0]["key"]["seed"] == 0
    b = estimate_transition_matrix(small, "text", n_exemplars=2, cache=tmp_path)
    assert b.from_cache and b.seconds == a.seconds and torch.equal(a.matrix, b.matrix)
    c = estimate_transition_matrix(small, "text", n_exemplars=2, seed=1, cache=tmp_path)
    assert not c.from_cache
    assert len(list((tmp_path / "transition").glob("*.json"))) == 2
    assert not torch.equal(a.exemplars, c.exemplars)


# --------------------------------------------------------------------------- bad input
def test_bad_input(small, trained_small):
    with pytest.raises(MeguError, match="shape"):
        check_transition_matrix(torch.ones(10, 4), 10, 10)
    with pytest.raises(MeguError, match="NaN"):
        check_transition_matrix(torch.full((3, 3), float("nan")), 3, 3)
    with pytest.raises(MeguError, match="negative"):
        check_transition_matrix(-torch.ones(2, 2), 2, 2)
    with pytest.raises(MeguError, match="use one of vlm, clip, text, features, uniform"):
        estimate_transition_matrix(small, "oracle")
    with pytest.raises(MeguError, match="ask for at most"):
        estimate_transition_matrix(small, "uniform", n_exemplars=10_000)
    with pytest.raises(MeguError, match="needs the trained model"):
        estimate_transition_matrix(small, "features")
    with pytest.raises(MeguError, match="no option"):
        estimate_transition_matrix(small, "clip", temperature=2)
    with pytest.raises(MeguError, match="score must be one of"):  # before looking for weights
        estimate_transition_matrix(small, "clip", score="max", model_id="no-such-org/made-up-clip")
    with pytest.raises(MeguError, match="contradicts"):
        estimate_transition_matrix(small, "uniform", request=make_request(small, "subclass", forget="Shirt"),
                                   concept_level="coarse")
    for judge in ("vlm", "clip"):
        with pytest.raises(MeguError) as e:
            estimate_transition_matrix(small, judge, model_id="no-such-org/made-up-vlm-7b")
        msg = str(e.value)
        assert "made-up-vlm-7b" in msg and "model_id=" in msg and "MEGU_" in msg and "text, features, uniform" in msg
        assert "\n" not in msg
