"""The ``restorekit`` command line; ``tools/*.py`` are thin shims over it.

Exit status: 0 success; 1 a run failed (diverged, a checkpoint could not be written);
2 bad input (config, data, names, usage), printed without a traceback unless ``--debug``;
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from . import __version__
from .errors import ConfigError, RestorekitError, TrainingError

__all__ = ["main", "build_parser"]


def _split_overrides(args: argparse.Namespace) -> list[str]:
    return [*(args.overrides or []), *(args.set or [])]


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config file (see configs/)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides, e.g. data.rainy=/photos/rain train.iters=20000",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="another override (repeatable)")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="compute precision (default fp32)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restorekit",
        description="Unpaired image restoration by two-stage data distillation (Rain O'er Me, TIP 2020).",
    )
    parser.add_argument("--version", action="version", version=f"restorekit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train from a config", description="Train from a config.")
    _add_config_args(p)
    p.add_argument("--work-dir", help="run folder (default: runtime.work_dir or runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run folder's latest checkpoint")

    p = sub.add_parser("validate", help="check a config without running it (exit 0 only if valid)")
    _add_config_args(p)

    p = sub.add_parser("print-config", help="print the fully resolved config")
    _add_config_args(p)

    p = sub.add_parser("test", help="evaluate a checkpoint on a paired folder (rain/ + gt/)")
    p.add_argument("--checkpoint", required=True, help="model file, checkpoint folder or run folder")
    p.add_argument("--data", required=True, help="paired folder with rain/ and gt/, or a demo: name")
    p.add_argument("--json", help="write the mean metrics as JSON here")
    p.add_argument("--csv", help="per-image metrics CSV (default: next to the model, test_<data>.csv)")
    p.add_argument("--save-images", metavar="DIR", help="also write the restored images here")
    p.add_argument("--baselines", action="store_true", help="also score the degraded input itself")
    _add_runtime_args(p)

    p = sub.add_parser("restore", help="restore a photo or a folder of photos")
    p.add_argument("--checkpoint", required=True, help="model file, checkpoint folder or run folder")
    p.add_argument("--input", required=True, help="an image file or a folder (searched recursively)")
    p.add_argument("--output", required=True, help="output folder (PNG files, same relative names)")
    _add_runtime_args(p)

    p = sub.add_parser("convert", help="convert a foreign checkpoint into a restorekit model file")
    p.add_argument("--from", dest="source_format", required=True, help="source format: rain-over-me")
    p.add_argument("src", help="input checkpoint (e.g. latest_net_G.pth)")
    p.add_argument("dst", help="output model file (.safetensors) or folder")

    p = sub.add_parser("list", help="list registered names of a kind, one per line")
    p.add_argument("kind", help="backbones, detail_blocks, filters, losses, schedulers or synthesizers")
    p.add_argument("pattern", nargs="?", help="wildcard, e.g. 'pre*'")

    p = sub.add_parser("info", help="show where a registered name comes from and its arguments")
    p.add_argument("kind")
    p.add_argument("name")

    sub.add_parser("plugins", help="list third-party plugins found through entry points")
    return parser


# --------------------------------------------------------------------------- commands
def _cmd_train(args: argparse.Namespace, console: Console) -> int:
    from .config import load_config
    from .engine.trainer import Trainer

    resolved = load_config(args.config, _split_overrides(args))
    result = Trainer(resolved, work_dir=args.work_dir, resume=args.resume, console=console).fit()
    return 130 if result.interrupted == "SIGINT" else 0


def _cmd_validate(args: argparse.Namespace, console: Console) -> int:
    from .config import load_config

    resolved = load_config(args.config, _split_overrides(args))
    cfg = resolved.config
    console.print(f"{args.config}: valid ({cfg.method}, backbone {cfg.backbone['type']}, {cfg.train.iters} iterations)")
    return 0


def _cmd_print_config(args: argparse.Namespace, console: Console) -> int:
    from .config import load_config

    print(load_config(args.config, _split_overrides(args), check_data_folders=False).to_yaml(), end="")
    return 0


def _load_restorer(args: argparse.Namespace):
    from .engine.checkpoint import load_model
    from .engine.device import resolve_device
    from .inference import Restorer

    device = resolve_device(args.device)
    loaded = load_model(args.checkpoint, device)
    return loaded, Restorer(loaded.backbone, device, precision=args.precision, channels_last=args.channels_last)


def _cmd_test(args: argparse.Namespace, console: Console) -> int:
    from .data.build import resolve_folder
    from .data.datasets import PairedSet
    from .data.io import write_image
    from .evaluation import evaluate, results_table

    loaded, restorer = _load_restorer(args)
    folder = resolve_folder(args.data)
    pairs = PairedSet(folder)
    if len(pairs.report):
        console.print(pairs.report.summary(), style="yellow")
    save_dir = Path(args.save_images) if args.save_images else None

    def save(name: str, image) -> None:
        if save_dir is not None:
            write_image(save_dir / f"{name}.png", image)

    rows = []
    if args.baselines:
        rows.append(evaluate(pairs, lambda image: image, "degraded input"))
    result = evaluate(pairs, restorer, f"{loaded.spec['type']} ({loaded.path.name})", on_image=save)
    rows.append(result)
    console.print(results_table(rows, f"{folder} ({len(pairs)} pairs)"))
    csv_path = Path(args.csv) if args.csv else loaded.path.parent / f"test_{folder.name}.csv"
    result.write_csv(csv_path)
    console.print(f"per-image metrics: {csv_path}")
    if args.json:
        result.write_json(args.json)
        console.print(f"means: {args.json}")
    return 0


def _cmd_restore(args: argparse.Namespace, console: Console) -> int:
    from .data.io import list_images, read_image, write_image
    from .errors import ImageReadError

    loaded, restorer = _load_restorer(args)
    source = Path(args.input).expanduser()
    output = Path(args.output)
    if source.is_file():
        jobs = [(source, output / f"{source.stem}.png")]
    else:
        jobs = [(p, output / p.relative_to(source).with_suffix(".png")) for p in list_images(source)]
    failed = 0
    for src, dst in jobs:
        try:
            image = read_image(src)
        except ImageReadError as exc:
            failed += 1
            console.print(f"skipped {exc}", style="yellow")
            continue
        write_image(dst, restorer(image))
    console.print(f"restored {len(jobs) - failed} image(s) into {output}" + (f"; {failed} skipped" if failed else ""))
    return 0 if len(jobs) > failed else 2


def _cmd_convert(args: argparse.Namespace, console: Console) -> int:
    from .convert import convert

    path = convert(args.source_format, args.src, args.dst)
    console.print(f"wrote {path}")
    return 0


def _cmd_list(args: argparse.Namespace, console: Console) -> int:
    from .registries import get_registry

    for name in get_registry(args.kind).names(args.pattern):
        print(name)
    return 0


def _cmd_info(args: argparse.Namespace, console: Console) -> int:
    from .registries import get_registry

    info = get_registry(args.kind).info(args.name)
    where = f"{info.file}:{info.line}" if info.file else "?"
    print(f"{info.kind} '{info.name}' = {info.target}{info.signature}\nsource: {info.source}\nfile: {where}\n")
    print(info.doc)
    return 0


def _cmd_plugins(args: argparse.Namespace, console: Console) -> int:
    from .registries import REGISTRIES
    from .registry import PLUGINS_ENV, plugins_disabled

    if plugins_disabled():
        print(f"plugin discovery is off ({PLUGINS_ENV} is set)")
        return 0
    found = [info for registry in REGISTRIES.values() for info in registry.plugins(load=True)]
    if not found:
        print("no plugins found (entry-point groups: " + ", ".join(r.group or "" for r in REGISTRIES.values()) + ")")
        return 0
    for info in found:
        dist = f"{info.dist}=={info.version}" if info.dist else "?"
        print(f"{info.kind}\t{info.name}\t{dist}\t{info.value}\t{info.status}")
    return 1 if any(info.status.startswith("error") for info in found) else 0


COMMANDS = {
    "train": _cmd_train,
    "validate": _cmd_validate,
    "print-config": _cmd_print_config,
    "test": _cmd_test,
    "restore": _cmd_restore,
    "convert": _cmd_convert,
    "list": _cmd_list,
    "info": _cmd_info,
    "plugins": _cmd_plugins,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(markup=False, highlight=False, soft_wrap=True)
    try:
        return COMMANDS[args.command](args, console)
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except TrainingError as exc:
        if args.debug:
            raise
        console.print(f"error: {exc}", style="red")
        return 1
    except (RestorekitError, ConfigError) as exc:
        if args.debug:
            raise
        console.print(f"error: {exc}", style="red")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
