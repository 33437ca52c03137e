"""A profile's whole run from empty caches, timed stage by stage; resumable; prints JSON.

    python benchmarks/clean_run.py main                      # tune, run and privacy, from nothing
    python benchmarks/clean_run.py main --stages tune run    # without the privacy run
    python benchmarks/clean_run.py smoke --work /tmp/clean   # a quick try of the script itself

Every stage is the CLI command a reader would type (``python -m megu_lib tune|run|privacy
<profile>``), run with its own empty cache folder (``--work``, default
``.cache/clean_run/<profile>``, ignored by git) and its own results folder (``--results``, default
``results/clean_run``, so ``results/clean_run/<profile>/``), so nothing committed is reused: the
originals, the tuning tasks, the studies, every record and every shadow are made again. The
committed records of the profile are not touched.

An interrupted measurement resumes: run the same command again. The commands resume at the
record (study trial, run, shadow model) they stopped at, and each stage's time is the sum of its
segments' wall-clock times, kept in ``results/clean_run/<profile>/segments.json`` (a running
segment's time is written every 15 s, so one killed with its process counts until its last
update); the work lost at an interruption
(the record being made) is counted again when it is made again. The results folder is meant to
be committed as the run goes (its records and studies are small JSON; the SQLite storage is
ignored), so that a measurement longer than one working session goes on in the next one, on a
fresh clone: what lay only in the cache (the originals, the task models) is made again there,
and its time counts again. Each segment
starts with a short training-throughput probe (``benchmarks/throughput.py``), so that times
measured on different machines, or on one machine at different loads, can be compared as
ratios. The clean run's own tuning studies — the profile's studies made again from nothing, on
this machine — are copied, as far as they have finished, to the committed results folder as
the replicate ``clean_run`` (``results/<profile>/tuning/replicates/clean_run/``, with the
machine's probe in ``about.json``): chapter 05 sets them beside the committed studies
(``--export-only`` copies them and stops; ``--no-export`` leaves the replicate as it is, for a
stage timed again in folders of its own:
``--stages tune --work .cache/clean_run/main-again --results results/clean_run_again
--out results/main/clean_run_again.json --no-export``; ``--replicate NAME`` commits a run's
studies under another name: ``--results results/clean_run_again --export-only --replicate
clean_run_again`` adds that third search beside the others). After every segment the summary goes to ``--out``
(default ``results/<profile>/clean_run.json``): per stage its seconds, its segments (each with
its machine and probe) and whether it has finished, the total so far, and ``complete`` once
every stage has finished.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("tune", "run", "privacy")
SHOWN = ("stage", "at", "seconds", "finished", "exit", "probe", "probes", "machine", "segments", "note")
HEARTBEAT = 15  # seconds between two updates of a running segment's time


def probe(env) -> dict:
    """Training throughput of the small CNN on this machine now (images per second)."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--repeats", "2", "--images", "2048"]
    res = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return dict(train_images_per_s=out["train_images_per_s"], threads=out["threads"], precision=out["precision"])


def export_studies(profile: str, results: Path, segments: list, name: str = "clean_run") -> int:
    """Copy the clean run's finished studies to the committed replicate ``name``."""
    from megu_lib.profile import load_config
    from megu_lib.tuning import replicates_folder, save_replicate
    cfg = load_config(profile)
    source = results / cfg.name / "tuning"
    if cfg.tuning is None or not source.is_dir():
        return 0
    tune = [s for s in segments if s["stage"] == "tune"]
    started = tune[0]["at"] if tune else None
    # where and at which commit the studies were made, not where and when they are copied
    git = ["git", "rev-list", "-1", "--abbrev-commit", *([f"--before={started}"] if started else []), "HEAD"]
    about = dict(source="benchmarks/clean_run.py: the profile's studies made again from empty caches",
                 platform=(tune[0].get("machine") if tune else None) or platform.platform(), cpus=os.cpu_count(),
                 probes=[s["probe"] for s in tune], started=started,
                 git_commit=subprocess.run(git, cwd=ROOT, capture_output=True, text=True).stdout.strip() or None)
    earlier = replicates_folder(cfg) / name / "about.json"
    if earlier.exists():  # the commit the repeat began at stays its commit
        about["git_commit"] = json.loads(earlier.read_text()).get("git_commit") or about["git_commit"]
    return len(save_replicate(cfg, name, source, about))


def default_results(profile: str) -> Path:
    """The results folder the clean run's commands write into: the parent of the profile's
    ``experiments.clean_run_folder`` (where the chapters read it)."""
    from megu_lib.experiments import clean_run_folder
    from megu_lib.profile import load_config
    return clean_run_folder(load_config(profile)).parent


def summary(profile: str, stages, segments: list) -> dict:
    """Per stage its seconds summed over its segments, how many, whether it has finished; the total."""
    per = {st: dict(seconds=round(sum(s["seconds"] or 0 for s in segments if s["stage"] == st), 1),
                    segments=sum(s.get("segments", 1) for s in segments if s["stage"] == st),
                    finished=any(s["finished"] for s in segments if s["stage"] == st)) for st in stages}
    total = sum(v["seconds"] for v in per.values())
    return dict(profile=profile, stages=per, total_seconds=round(total, 1), total_hours=round(total / 3600, 2),
                complete=all(v["finished"] for v in per.values()),
                segments=[{k: s.get(k) for k in SHOWN if s.get(k) is not None} for s in segments],
                cpus=os.cpu_count(), threads=os.environ.get("OMP_NUM_THREADS", "default"),
                note="from empty caches; each stage's seconds summed over its segments, each segment with the "
                     "machine it ran on and a training-throughput probe taken at its start")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile")
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--work", default=None, help="the run's own cache folder (default .cache/clean_run/<profile>)")
    ap.add_argument("--results", default=None,
                    help="the run's own results folder, meant to be committed (default results/clean_run)")
    ap.add_argument("--out", default=None, help="the summary (JSON)")
    ap.add_argument("--no-export", action="store_true",
                    help="leave the committed replicate clean_run as it is (a stage timed again in folders of its own)")
    ap.add_argument("--export-only", action="store_true",
                    help="copy the finished tuning studies to results/<profile>/tuning/replicates/<replicate> and stop")
    ap.add_argument("--replicate", default="clean_run",
                    help="the name the run's studies are committed under as a replicate (default clean_run)")
    args = ap.parse_args()
    work = Path(args.work or ROOT / ".cache" / "clean_run" / args.profile).resolve()
    results = Path(args.results).resolve() if args.results else default_results(args.profile)
    out = Path(args.out or ROOT / "results" / args.profile / "clean_run.json")
    mine = results / args.profile  # the profile's own folder under the run's results folder
    for folder in (work, mine):
        folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MEGU_CACHE_DIR": str(work / "cache"), "MEGU_RESULTS_DIR": str(results),
           "MEGU_PROGRESS": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("MEGU_NO_CACHE", None)
    log_path = mine / "segments.json"
    segments = json.loads(log_path.read_text()) if log_path.exists() else []
    for seg in segments:
        if not seg["finished"] and seg["exit"] is None:  # killed with its process: its last heartbeat stands
            seg["exit"] = "killed"
            seg["seconds"] = seg["seconds"] or 0.0
    done = {s["stage"] for s in segments if s["finished"]}
    if args.export_only:
        print(json.dumps(dict(event="export", studies=export_studies(args.profile, results, segments,
                                                                     args.replicate))), flush=True)
        return

    def save():
        log_path.write_text(json.dumps(segments, indent=1) + "\n")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary(args.profile, args.stages, segments), indent=1) + "\n")

    speed = probe(env)
    print(json.dumps(dict(event="probe", **speed)), flush=True)
    for stage in args.stages:
        if stage in done:
            continue
        seg = dict(stage=stage, seconds=None, finished=False, exit=None, probe=speed, started=time.time(),
                   at=time.strftime("%Y-%m-%dT%H:%M:%S"), machine=platform.platform())
        segments.append(seg)
        save()
        proc = subprocess.Popen([sys.executable, "-m", "megu_lib", stage, args.profile], env=env, cwd=ROOT)
        while True:  # a heartbeat: a segment killed with this process keeps the time it had run
            try:
                code = proc.wait(timeout=HEARTBEAT)
                break
            except subprocess.TimeoutExpired:
                seg["seconds"] = round(time.time() - seg["started"], 1)
                save()
        seg.update(seconds=round(time.time() - seg["started"], 1), finished=code == 0, exit=code)
        save()
        print(json.dumps(dict(event="segment", **seg)), flush=True)
        if stage == "tune" and not args.no_export:
            print(json.dumps(dict(event="export", studies=export_studies(args.profile, results, segments,
                                                                         args.replicate))), flush=True)
        if code != 0:
            sys.exit(f"{stage} stopped (exit {code}); run the same command again to resume")
    save()
    print(json.dumps(summary(args.profile, args.stages, segments)))


if __name__ == "__main__":
    main()
