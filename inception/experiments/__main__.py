"""Reruns the paper's three empirical claims in miniature and writes the report.

    python -m inception.experiments            # full: about 60 minutes on 2 CPU cores
    python -m inception.experiments --quick    # about 5 minutes: every figure, one seed

Runs go to --runs_dir (ordinary training run directories: TensorBoard reads them); the report
(README.md, PNG figures, results.json) to --out_dir. Rerunning skips finished runs.
"""

import argparse
import json
import os
import sys
import time

from inception import console, fileio


def _parser():
    """The command's flags."""
    parser = argparse.ArgumentParser(
        prog="python -m inception.experiments", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="5-minute version (one seed)")
    parser.add_argument(
        "--scale",
        choices=["full", "quick", "tiny"],
        help="explicit scale (tiny: the test suite's); overrides --quick",
    )
    parser.add_argument("--runs_dir", default="runs/experiments")
    parser.add_argument("--out_dir", default="docs/reproduction")
    parser.add_argument("--data_dir", default="data", help="TFDS data directory")
    parser.add_argument(
        "--mixed_precision",
        action="store_true",
        help="train every run in bfloat16 (main.py's --mixed_precision); the runs "
        "go to their own directory and the report names the precision",
    )
    parser.add_argument("--verbose", action="store_true", help=console.VERBOSE_HELP)
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    console.quiet(args.verbose)

    from inception.experiments import document, results, runner, runs

    scale = runs.SCALES[args.scale or ("quick" if args.quick else "full")]
    from inception.train.rundir import precision_name

    precision = precision_name(args.mixed_precision)
    # A run keeps one precision (a resume in the other is refused): bfloat16 runs get their own.
    root = os.path.join(args.runs_dir, scale.name + ("-bf16" if args.mixed_precision else ""))
    os.makedirs(args.out_dir, exist_ok=True)
    specs = [
        dataclass_replace_flags(s, data_dir=args.data_dir, mixed_precision=args.mixed_precision)
        for s in runs.all_runs(scale)
    ]
    started = time.time()
    print(
        f"scale {scale.name}: {len(specs)} training runs under {root}, report in {args.out_dir}",
        flush=True,
    )
    from inception.train import errors

    try:
        runner.run_all(root, specs, log=lambda m: print(m, flush=True))
    except errors.Interrupted as stop:  # SIGTERM/Ctrl-C: the run saved; a rerun resumes it
        print(stop, flush=True)
        return errors.EXIT_INTERRUPTED

    cost_rows = _cost_rows(root, scale)

    speed_specs = [s for s in specs if s.claim == "speed"]
    died_specs = [s for s in specs if s.claim == "died"]
    command = "python -m inception.experiments" + (
        f" --scale={scale.name}" if scale.name != "full" else ""
    )
    command += " --mixed_precision" if args.mixed_precision else ""
    verdicts = document.write(
        args.out_dir,
        scale,
        results.speed_curves(root, speed_specs),
        results.died_series(root, died_specs),
        cost_rows,
        command,
        precision,
    )
    for claim, (verdict, detail) in verdicts.items():
        print(f"{claim}: {verdict} ({detail})")
    print(f"report: {os.path.join(args.out_dir, 'README.md')} ({time.time() - started:.0f} s)")
    return 0


def _cost_rows(root, scale):
    """Claim 3's measurements: read from the runs' directory, or measured once and kept there."""
    from inception.experiments import speed

    cost_path = os.path.join(root, "cost_vs_speed.json")
    if os.path.exists(cost_path):
        print("cost vs speed: measured earlier, reused", flush=True)
        return fileio.read_json(cost_path)
    print("cost vs speed: measuring the networks", flush=True)
    cost_rows = speed.measure(scale.cost, log=lambda m: print(m, flush=True))
    fileio.write_text(cost_path, json.dumps(cost_rows, indent=2))
    return cost_rows


def dataclass_replace_flags(spec, **flags):
    import dataclasses

    return dataclasses.replace(spec, flags=dict(spec.flags, **flags))


if __name__ == "__main__":
    sys.exit(main())
