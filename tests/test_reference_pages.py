"""What the book's reference pages rest on: where each of MeGU's defaults comes from
(``Param.origin``), the table of MeGU's hyperparameters with the values tuning chose, and
every registered method documented on the API page."""
import json
import re
from pathlib import Path

import pytest
import yaml

import megu_lib.profile as pf
from megu_lib import hparams as hp
from megu_lib.errors import MeguError
from megu_lib.methods import get_method, list_methods
from megu_lib.tables import megu_hp_table

ROOT = Path(__file__).resolve().parents[1]


def test_a_declaration_says_where_its_default_comes_from():
    assert hp.Param(1.0).origin == "" and hp.Param(1.0, origin="paper").origin == "paper"
    assert hp.lr(0.01, origin="ours").origin == "ours" and hp.lr(0.01).help == "learning rate"
    assert hp.flag(True, "a switch", origin="paper").help == "a switch"
    assert hp.Choice("a", ("a", "b"), origin="ours").replace(origin="paper").origin == "paper"
    with pytest.raises(MeguError, match="unknown hyperparameter origin 'tuned': use one of paper, ours"):
        hp.Float(0.5, origin="tuned")


def test_every_megu_default_has_an_origin_and_a_meaning():
    for method in ["megu", *[m for m in list_methods() if m.startswith("megu_")]]:
        params = get_method(method).params
        assert {p.origin for p in params.values()} <= set(hp.ORIGINS), method
        assert all(p.help for p in params.values()), method
    params = get_method("megu").params
    assert params["use_pos"].origin == params["use_neg"].origin == "paper"
    # the departures from what the paper states are ours
    assert all(params[k].origin == "ours" for k in ("targets", "noise_prob", "noise_eps", "noise_norm", "judge"))


def _profile(tmp_path, **changes):
    cfg = dict(name="tiny", dataset="fashion_mnist", subset={"train": 600, "test": 200},
               model={"arch": "small_cnn", "width": 4}, train={"preset": "fast", "epochs": 1, "batch_size": 64},
               device="cpu", seeds=[0], judge="uniform", eval={"max_retain": 200},
               scenarios={"class": {"forget": ["Trouser"]}, "random": {"forget": [0.1]}},
               methods=["retrain", "megu", "megu_paper"], hp={"megu": {"noise_steps": 10}},
               tuning={"trials": 2, "methods": ["megu"]})
    cfg.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return pf.load_config(path)


def _write_study(cfg, scenario: str, chosen: dict):
    from megu_lib.requests import config_hash
    from megu_lib.tuning import study_key, tuning_folder
    folder = tuning_folder(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"megu-{scenario}.json").write_text(json.dumps(dict(
        key_hash=config_hash(study_key(cfg, "megu", scenario)), trials=[{"state": "COMPLETE"}], chosen=chosen)))


def test_megu_hp_table_marks_paper_ours_and_tuned(tmp_path):
    cfg = _profile(tmp_path)
    base = {"judge": "uniform", "noise_steps": 10}  # a study's choice includes what the profile fixes
    _write_study(cfg, "class", {**base, "rule": "mix", "mix_weight": 0.25, "targets": "soft"})
    _write_study(cfg, "random", {**base, "noise_prob": 0.125, "epochs": 0.3333})
    table = megu_hp_table(cfg)
    assert list(table.index) == list(get_method("megu").params)
    assert list(table.columns) == ["default", "origin", "what it means", "set by the profile",
                                   "tuned, class", "tuned, random"]
    assert table.loc["use_pos", "origin"] == "paper" and table.loc["noise_prob", "origin"] == "ours"
    assert table.loc["noise_prob", "default"] == "0.5" and table.loc["noise_eps", "default"] == "0.3"
    assert table.loc["noise_eps", "what it means"].startswith("L∞ bound")
    # the profile's own values, never shown as tuned
    assert table.loc["judge", "set by the profile"] == "uniform" and table.loc["judge", "tuned, class"] == ""
    assert table.loc["noise_steps", "set by the profile"] == "10" and table.loc["noise_steps", "tuned, random"] == ""
    # the studies' choices, blank where a study kept the default
    assert table.loc["rule", "tuned, class"] == "mix" and table.loc["rule", "tuned, random"] == ""
    assert table.loc["mix_weight", "tuned, class"] == "0.25" and table.loc["targets", "tuned, class"] == ""
    assert table.loc["noise_prob", "tuned, random"] == "0.125" and table.loc["noise_prob", "tuned, class"] == ""
    assert table.loc["epochs", "tuned, random"] == "0.333"
    # an ablation's fixed values are not its hyperparameters; it is not tuned here
    paper = megu_hp_table(cfg, "megu_paper")
    assert "targets" not in paper.index and "noise_prob" not in paper.index
    assert not any(c.startswith("tuned") for c in paper.columns)


def test_megu_hp_table_without_tuning_or_overrides(tmp_path):
    cfg = _profile(tmp_path, judge="text", hp={}, tuning={"trials": 2, "use": False})
    table = megu_hp_table(cfg)
    assert list(table.columns) == ["default", "origin", "what it means"]
    with pytest.raises(MeguError, match="study of megu on class is missing"):
        megu_hp_table(_profile(tmp_path))  # tuned, but the study was never run


def test_every_registered_method_is_on_the_api_page():
    """Each method's function is a documented name of a module that book/api.md renders."""
    page = (ROOT / "book" / "api.md").read_text()
    rendered = set(re.findall(r"^\.\. automodule:: (\S+)$", page, flags=re.M))
    for name in list_methods():
        fn = get_method(name).fn
        module = __import__(fn.__module__, fromlist=["_"])
        assert fn.__module__ in rendered, f"{name}: {fn.__module__} is not on the API page"
        assert getattr(module, fn.__name__, None) is fn, f"{name}: not a name of {fn.__module__}"
        assert fn.__doc__ and len(fn.__doc__.split()) > 10, f"{name}: no docstring to render"


def _method_page() -> str:
    return (ROOT / "book" / "method.md").read_text()


def _section(page: str, label: str) -> str:
    start = page.index(f"({label})=")
    nxt = page.find("\n(method-", start + 1)
    return page[start:] if nxt < 0 else page[start:nxt]


def test_the_method_page_describes_every_baseline_and_ablation():
    page = _method_page()
    baselines = set(re.findall(r"^`(\w+)` — ", _section(page, "method-baselines"), flags=re.M))
    assert baselines == {m for m in list_methods() if not m.startswith("megu")}
    from megu_lib.methods.megu import VARIANTS
    ablations = set(re.findall(r"^\| `(megu_\w+)` \|", _section(page, "method-ablations"), flags=re.M))
    assert ablations == set(VARIANTS)
    entries = dict(re.findall(r"^`(\w+)` — .*?\n((?:  .*\n|: .*\n)+)", _section(page, "method-baselines"),
                              flags=re.M))
    assert set(entries) == baselines
    for name, text in entries.items():
        named = set(re.findall(r"`(\w+)`", text.split("Hyperparameters:")[1].split("Departures")[0]))
        assert named == set(get_method(name).params), name  # every hyperparameter named, by its code name


def test_numbers_the_method_page_types_are_the_codes():
    """The page quotes MeGU's declared defaults, a constant and the judges' default weights:
    each must be what the code says."""
    from megu_lib.claims import POWERLESS_AUC
    from megu_lib.judges import get_judge
    page = _method_page()
    rows = {cells[-1]: cells for cells in (
        [c.strip() for c in line.strip("|").split("|")] for line in page.splitlines() if line.startswith("| "))}
    params = get_method("megu").params
    quoted = [("`noise_lr`", "noise_lr", "0.1"), ("`noise_steps`", "noise_steps", "30"),
              ("`noise_lambda`", "noise_lambda", "0.1"), ("`noise_eps`", "noise_eps", "0.3"),
              ("`noise_prob`", "noise_prob", "0.5"), ("`lr`", "lr", "0.003"), ("`lr`", "momentum", "0.9"),
              ("`lr`", "weight_decay", "5e-4"), ("`epochs`, `batch_size`", "batch_size", "128"),
              ("`n_exemplars`", "n_exemplars", "10"), ("`mix_weight`", "mix_weight", "0.5")]
    for row, name, shown in quoted:
        assert shown in rows[row][1] and float(shown) == params[name].default, (name, rows[row])
    assert f"`megu_lib.claims.POWERLESS_AUC` = {POWERLESS_AUC:g}" in page
    for judge in ("vlm", "clip", "text"):
        assert f"`{get_judge(judge).default_model_id}`" in page, judge


def test_bibliography_entries_are_labelled_as_they_are_cited():
    import importlib.util

    from pybtex.database import Entry, Person
    from pybtex.plugin import find_plugin
    spec = importlib.util.spec_from_file_location("megu_docs", ROOT / "book" / "_ext" / "megu_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def entry(year, *authors):
        return Entry("article", fields={"year": year, "title": "T"}, persons={"author": [Person(a) for a in authors]})
    one, two = entry("2018", "Yeom, Samuel"), entry("2019", "Reimers, Nils", "Gurevych, Iryna")
    many = entry("2024", "Foster, Jack", "Schoepf, Stefan", "Brintrup, Alexandra")
    assert [mod.author_year_label(e) for e in (one, two, many)] == [
        "Yeom, 2018", "Reimers and Gurevych, 2019", "Foster et al., 2024"]
    mod._register_author_year_style()
    style = find_plugin("pybtex.style.formatting", "author_year")()
    twin = entry("2024", "Foster, Jack", "Schoepf, Stefan", "Brintrup, Alexandra")  # equal fields, another work
    assert list(style.format_labels([one, many, twin])) == ["Yeom, 2018", "Foster et al., 2024a",
                                                            "Foster et al., 2024b"]
    assert yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]["bibtex_default_style"] == \
        "author_year"
