"""megu_lib.stats: intervals over seeds, equal-weight pooling, paired bootstrap, rankings."""
import math

import numpy as np
import pandas as pd
import pytest

from megu_lib import MeguError
from megu_lib.stats import discriminates, mean_ci, paired_bootstrap, ranking, seed_gaps


def _records(gaps: dict, seeds=(0, 1, 2, 3, 4), requests=(("class", "class:a"), ("class", "class:b"),
                                                             ("random", "random:0.1"))) -> pd.DataFrame:
    """``gaps[method](scenario, seed)`` -> the gap of that run."""
    rows = [dict(method=m, scenario=s, request=r, seed=seed, gap=float(f(s, seed)), seconds=1.0)
            for m, f in gaps.items() for s, r in requests for seed in seeds]
    return pd.DataFrame(rows)


def test_mean_ci_is_the_student_t_interval():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert m == 3.0 and lo == pytest.approx(3 - 2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-5)
    assert hi - m == pytest.approx(m - lo)
    m, lo, hi = mean_ci([7.0])
    assert m == 7.0 and math.isnan(lo) and math.isnan(hi)
    with pytest.raises(MeguError, match="at least one finite value"):
        mean_ci([float("nan")])


def test_scenarios_weigh_equally():
    # class has two requests at gap 10, random one at gap 0: equal weights give 5, not 6.67
    df = _records({"m": lambda s, seed: 10.0 if s == "class" else 0.0})
    assert (seed_gaps(df).loc["m"] == 5.0).all()
    assert (seed_gaps(df, "class").loc["m"] == 10.0).all()


def test_paired_bootstrap_sees_a_consistent_small_difference():
    rng = np.random.default_rng(0)
    noise = {seed: rng.normal(0, 3) for seed in range(5)}  # shared by both methods on a seed
    df = _records({"a": lambda s, seed: 5 + noise[seed], "b": lambda s, seed: 6 + noise[seed]})
    out = paired_bootstrap(df, "a", "b")
    assert out["diff"] == pytest.approx(-1.0) and out["high"] < 0 and out["seeds"] == 5 and out["pairs"] == 15
    # unpaired, the seeds' noise would swamp the difference: the per-method intervals overlap
    r = ranking(df)
    assert r.loc["b", "cannot_tell"]
    one_seed = paired_bootstrap(df[df.seed == 0], "a", "b")
    assert math.isnan(one_seed["low"])
    with pytest.raises(MeguError, match="share no"):
        paired_bootstrap(df, "a", "missing")


def test_ranking_keeps_the_original_and_says_when_it_cannot_discriminate():
    df = _records({"retrain": lambda s, seed: 0.0, "original": lambda s, seed: 3.0 + seed % 2,
                   "good": lambda s, seed: 2.5 + seed % 2, "bad": lambda s, seed: 20.0 + seed % 2})
    r = ranking(df)
    assert list(r.index) == ["good", "original", "bad"] and "retrain" not in r.index
    assert list(r["rank"]) == [1, 2, 3] and r.loc["good", "seeds"] == 5
    assert r.loc["original", "cannot_tell"] and not r.loc["bad", "cannot_tell"]
    assert not discriminates(r)
    df2 = _records({"original": lambda s, seed: 30.0 + seed % 2, "good": lambda s, seed: 2.5 + seed % 2})
    assert discriminates(ranking(df2))


def test_standing_per_scenario_and_overall():
    from megu_lib.stats import format_standing, standing
    gaps = {"retrain": lambda s, seed: 0.0, "original": lambda s, seed: (2.0 if s == "random" else 30.0) + seed % 2,
            "finetune": lambda s, seed: 2.0 + seed % 2, "megu": lambda s, seed: 5.0 + seed % 2}
    table = standing(_records(gaps))
    assert list(table.index) == ["class", "random", "all"]
    assert table.loc["class", "closest"] == "finetune" and table.loc["class", "discriminates"]
    assert not table.loc["random", "discriminates"]  # doing nothing is as close as the best method
    assert table.loc["class", "focus_rank"] == 2 and table.loc["class", "best_baseline"] == "finetune"
    assert table.loc["class", "diff"] == pytest.approx(3.0) and table.loc["class", "diff_low"] == pytest.approx(3.0)
    shown = format_standing(table)
    assert shown.loc["random", "discriminates"] == "cannot discriminate here"
    assert shown.loc["class", "MeGU (rank)"].endswith("(2 of 2)")


def test_standing_sentence_and_one_seed():
    from megu_lib.stats import format_standing, standing, standing_sentence
    gaps = {"retrain": lambda s, seed: 0.0, "original": lambda s, seed: (2.0 if s == "random" else 30.0) + seed % 2,
            "finetune": lambda s, seed: 2.0 + seed % 2, "megu": lambda s, seed: 5.0 + seed % 2}
    text = standing_sentence(standing(_records(gaps)))
    assert "**finetune**" in text and "further from retrain than the best baseline, finetune" in text
    assert "**random** forgetting" in text and "cannot discriminate" in text
    one = standing(_records(gaps, seeds=(0,)))
    assert format_standing(one).loc["class", "discriminates"] == "one seed: unknown"
    assert "no interval" in standing_sentence(one)


def test_typical_seconds_ignores_a_minority_of_runs_that_shared_the_machine():
    import pandas as pd

    from megu_lib.stats import typical_seconds
    rows = [dict(method=m, request=r, seed=s, seconds=base * (1 + 0.01 * s))
            for m, base in (("megu", 10.0), ("retrain", 60.0)) for r in ("class:Shirt", "random:0.1") for s in range(5)]
    df = pd.DataFrame(rows)
    clean = typical_seconds(df)
    slow = df.copy()
    slow.loc[(slow.method == "megu") & (slow.seed.isin([0, 3])), "seconds"] *= 15  # two of five runs shared the cores
    assert typical_seconds(slow)["megu"] == pytest.approx(clean["megu"], rel=0.02)
    assert slow[slow.method == "megu"].seconds.mean() > 5 * clean["megu"]  # where the mean would be far off
    assert clean["retrain"] == pytest.approx(60 * 1.02)
