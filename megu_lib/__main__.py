"""Command line: ``python -m megu_lib run <profile>``, ``tune <profile>``, ``privacy <profile>``, ``table <profile>``,
``methods``, ``profiles``.

Bad input (an unknown profile, method or scenario, a malformed config...) prints one
line and exits with status 2, before any training starts.
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m megu_lib", description="MeGU reproduction: experiments and tables")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) the experiments of a profile")
    run.add_argument("profile", help="a profile name in params/ or a YAML path")
    run.add_argument("--out", default=None, help="results folder (default results/<profile>)")
    run.add_argument("--dataset", default=None, help="override the profile's data set")
    run.add_argument("--device", default=None, help="override the profile's device")
    tune = sub.add_parser("tune", help="run (or resume) the tuning studies of a profile (run does this first)")
    tune.add_argument("profile", help="a profile name in params/ or a YAML path")
    tune.add_argument("--methods", nargs="+", default=None, help="only these methods (default: all tuned)")
    tune.add_argument("--scenarios", nargs="+", default=None, help="only these scenarios")
    tune.add_argument("--device", default=None, help="override the profile's device")
    priv = sub.add_parser("privacy", help="run (or resume) the per-example privacy run of a profile (U-LiRA)")
    priv.add_argument("profile", help="a profile name in params/ or a YAML path (with a privacy section)")
    priv.add_argument("--variant", default=None,
                      help="run only this variant of the privacy section (default: the section, then every variant)")
    priv.add_argument("--device", default=None, help="override the profile's device")
    tab = sub.add_parser("table", help="print the tables of a profile's records")
    tab.add_argument("profile", help="a profile name or a results folder")
    tab.add_argument("--scenario", default=None)
    tab.add_argument("--dataset", default=None, help="the data set the profile ran on, if not its own")
    sub.add_parser("methods", help="list the registered methods")
    sub.add_parser("profiles", help="list the profiles in params/")
    args = ap.parse_args(argv)
    from .errors import MeguError
    try:
        return _dispatch(args)
    except MeguError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished records are kept; run the same command again to resume", file=sys.stderr)
        return 130


def _dispatch(args) -> int:
    from pathlib import Path

    from . import profile as pf
    if args.command == "methods":
        from .methods import get_method, list_methods
        for m in list_methods():
            print(f"{m:20s} {get_method(m).summary}")
        return 0
    if args.command == "profiles":
        print("\n".join(pf.available_profiles()))
        return 0
    if args.command == "tune":
        from .tuning import tune_profile
        cfg = pf.load_config(args.profile, device=args.device)
        data = pf.load_data(cfg)
        cfg = cfg.for_data(data)[0]
        chosen = tune_profile(cfg, data, methods=args.methods, scenarios=args.scenarios)
        for method, by_scenario in chosen.items():
            for scenario, hp in by_scenario.items():
                print(f"{method:18s} {scenario:9s} {hp}")
        return 0
    if args.command == "privacy":
        from .shadows import privacy_results, privacy_table, run_privacy_settings
        cfg = pf.load_config(args.profile, device=args.device)
        data = pf.load_data(cfg)
        cfg = cfg.for_data(data)[0]
        for variant in run_privacy_settings(cfg, data=data, variants=None if args.variant is None else [args.variant]):
            print(privacy_table(privacy_results(cfg, data, variant)).round(2).to_string())
        return 0
    from . import experiments as ex
    if args.command == "run":
        cfg = pf.load_config(args.profile, dataset=args.dataset, device=args.device)
        ex.run_experiments(cfg, out_dir=args.out)
        data = pf.load_data(cfg)
        _print_tables(ex.profile_records(cfg.for_data(data)[0], data, out_dir=args.out))
        return 0
    path = Path(args.profile)
    if path.is_dir():  # a results folder: every record in it
        df = ex.load_records(path)
    else:  # a profile: exactly its records
        cfg = pf.load_config(args.profile, dataset=args.dataset)
        data = pf.load_data(cfg)
        df = ex.profile_records(cfg.for_data(data)[0], data)
    _print_tables(df, args.scenario)
    return 0


def _print_tables(df, scenario=None):
    import pandas as pd

    from . import tables
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        for s in [scenario] if scenario else list(dict.fromkeys(df.scenario)):
            t = tables.results_table(df, s, tables.all_methods(df))
            print(f"\n== {s} (mean over seeds and forget targets; gap = mean |metric - retrain|) ==")
            print(t.xs("mean", axis=1, level=1).round(2).to_string())


if __name__ == "__main__":
    sys.exit(main())
