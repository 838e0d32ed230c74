"""The CLI's commands that use a model or a config without training a run: predict, lr-find."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nnapp.cli.common import CLIError, config_arguments, find, load_config, read_file
from nnapp.engine.states import ClaimState, TaskKind
from nnapp.system.compat import keep_freed_memory

if TYPE_CHECKING:  # the store (and numpy) load when a command runs, not for --help
    from nnapp.store.store import Store


def add_parsers(sub) -> None:
    pred = sub.add_parser("predict", help="read digits from PNG or JPEG images, or say they are not digits")
    pred.add_argument("key", help="a run key or an unambiguous prefix")
    pred.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    lr = sub.add_parser(
        "lr-find",
        help="find a learning rate for a config (LR range test)",
        description="Train for about 100 steps while the learning rate grows from 1e-7 to 10; print the loss "
        "against the rate and the rate where the smoothed loss falls fastest. Cached per config.",
    )
    config_arguments(lr)
    lr.add_argument("--start", type=float, default=1e-7, help="first learning rate (default 1e-7)")
    lr.add_argument("--end", type=float, default=10.0, help="last learning rate (default 10)")
    lr.add_argument("--steps", type=int, default=100, help="training steps, one batch each (default 100)")
    lr.add_argument("--force", action="store_true", help="run the test again even if it ran before")


def read_images(paths: list[Path]) -> list:
    """Every image decoded before anything is predicted, so a bad file costs no work."""
    from nnapp.predict.images import MAX_UPLOAD_BYTES, ImageError, load_image

    images = []
    for path in paths:
        try:
            images.append(load_image(read_file(path, MAX_UPLOAD_BYTES, "an image")))
        except ImageError as err:
            raise CLIError(f"{path}: {err}") from None
    return images


def cmd_predict(args: argparse.Namespace, store: Store) -> int:
    from nnapp.data.examples import model_input
    from nnapp.engine.device import set_threads
    from nnapp.predict import ood
    from nnapp.predict.images import preprocess
    from nnapp.predict.inference import for_inference

    run = find(store, args.key)
    if not run.has_weights():
        raise CLIError(f"run {run.key} has no weights to predict with (status {run.status})")
    images = read_images(args.images)
    if ood.available(run.config) and ood.load_stats(store, run.key) is None:
        print(f"making the not-a-digit check of run {run.key[:8]} (once per run, a few seconds)", file=sys.stderr)
    stats = ood.ensure(store, run.key)
    set_threads(1)  # one digit at a time: one thread is the fastest
    model = for_inference(store.load_model(run.key)[0])
    spec = run.config.data_spec()
    for path, image in zip(args.images, images, strict=True):
        stages = preprocess(image) if spec.channels == 1 else None  # as the Playground: a digit, or a colour picture
        seen = stages.digit if stages is not None else model_input(image, 3) if spec.channels == 3 else None
        if seen is None:
            print(f"{path}: empty (no ink)")
            continue
        v = ood.judge(model, seen, stats)
        guess = f"probability {v.probabilities[v.digit]:.1%}"
        check = f"not-a-digit score {v.score:.2f}, threshold {v.threshold:.2f}" if stats else "no not-a-digit check"
        answer = spec.classes[v.digit] if v.is_digit else f"not a digit (best guess {spec.classes[v.digit]})"
        print(f"{path}: {answer}  [{guess}; {check}]" if ood.available(run.config) else f"{path}: {answer}  [{guess}]")
    return 0


def cmd_lr_find(args: argparse.Namespace, store: Store) -> int:
    if not 0 < args.start < args.end <= 1e3:
        raise CLIError("--start must be above 0 and below --end, and --end at most 1000")
    if not 10 <= args.steps <= 10_000:
        raise CLIError("--steps must be between 10 and 10000")
    keep_freed_memory()
    from nnapp.engine.device import set_threads, training_threads
    from nnapp.inside.lrfind import lr_find_payload, text_plot  # torch: only this command needs it
    from nnapp.tasks.run import run_or_follow

    config = load_config(args, store).config
    set_threads(training_threads())
    key, payload = lr_find_payload(config, args.start, args.end, args.steps)
    print(f"learning-rate range test of {config.key()}: {config.describe()}", file=sys.stderr)
    task, state = run_or_follow(store, TaskKind.LR_FIND, key, payload, force=args.force)
    if state == ClaimState.CACHED:
        print("loaded from cache")
    if not task.is_done():
        print(f"lr-find {task.status}: {task.message or 'no details'}")
        return 1
    print(text_plot(task.result))
    print(task.result["message"])
    return 0 if task.result["suggestion"] else 1


COMMANDS = {"predict": cmd_predict, "lr-find": cmd_lr_find}
WRITES = ("lr-find",)
