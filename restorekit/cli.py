"""The ``restorekit`` command line; ``tools/*.py`` are thin shims over it.

Exit status: 0 success; 1 a run failed (diverged, a checkpoint could not be written, the disk
or memory ran out); 2 bad input (config, data, names, usage), printed without a traceback
unless ``--debug``; 130 interrupted by SIGINT (Ctrl-C), 143 stopped by SIGTERM (after writing
a checkpoint, for ``train``).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from . import __version__
from .errors import ConfigError, RestorekitError, TrainingError

__all__ = ["main", "build_parser"]


def _split_overrides(args: argparse.Namespace) -> list[str]:
    return [*(args.overrides or []), *(args.set or [])]


def _add_config_args(p: argparse.ArgumentParser, *, optional: bool = False) -> None:
    if optional:
        p.add_argument("config", nargs="?", help="YAML config file (see configs/); with --resume, the run's own by default")
    else:
        p.add_argument("config", help="YAML config file (see configs/)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides, e.g. data.rainy=/photos/rain train.iters=20000",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="another override (repeatable)")


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (so `--tile 0` is a usage error, not a traceback)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """--checkpoint (a trained model of one's own) or --model (a built-in one); neither: the default built-in."""
    from .pretrained import DEFAULT_MODEL

    which = p.add_mutually_exclusive_group()
    which.add_argument("--checkpoint", help="model file, checkpoint folder or run folder")
    which.add_argument(
        "--model", help=f"a built-in model (restorekit list models); default {DEFAULT_MODEL} when no --checkpoint is given"
    )


def _model_path(args: argparse.Namespace) -> Path:
    from .deploy import resolve_model
    from .pretrained import DEFAULT_MODEL

    return Path(args.checkpoint) if args.checkpoint else resolve_model(args.model or DEFAULT_MODEL)


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "auto"],
        default="fp32",
        help="compute precision (default fp32; auto: bf16 where the hardware has it natively)",
    )
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the network with frozen weights (slow first image)"
    )
    p.add_argument(
        "--tile",
        type=_positive_int,
        metavar="N",
        help="restore in N×N tiles overlapped by the network's receptive field (same result, bounded memory)",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="the fastest exact-enough mode on this machine: bf16 (where native), channels-last, compile",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restorekit",
        description="Unpaired image restoration by two-stage data distillation (Rain O'er Me, TIP 2020).",
    )
    parser.add_argument("--version", action="version", version=f"restorekit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument(
        "--no-plugins",
        action="store_true",
        help="ignore third-party plugins (entry points); the same as RESTOREKIT_DISABLE_PLUGINS=1",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train from a config", description="Train from a config.")
    _add_config_args(p, optional=True)
    p.add_argument("--work-dir", help="run folder (default: runtime.work_dir or runs/<config name>)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run folder's latest checkpoint, with the run's own config (no CONFIG needed)",
    )
    p.add_argument(
        "--allow-changes",
        action="store_true",
        help="let a resume change what is safe to change (train.iters, logging, checkpoints, eval, threads, device)",
    )
    p.add_argument(
        "--allow-imports",
        action="store_true",
        help="run the Python modules the config lists under imports: (without it, such a config is refused)",
    )
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard event files (train.tensorboard=true)")

    p = sub.add_parser("validate", help="check a config without running it (exit 0 only if valid)")
    _add_config_args(p)

    p = sub.add_parser("print-config", help="print the fully resolved config")
    _add_config_args(p)

    p = sub.add_parser("test", help="evaluate a checkpoint on a paired folder (rain/ + gt/)")
    _add_model_args(p)
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="paired folder with rain/ and gt/, or a demo: name; several give a table each "
        "(e.g. demo:noise/test_s15 demo:noise/test_s25 demo:noise/test_s50)",
    )
    p.add_argument("--json", help="write the mean metrics as JSON here (several --data: keyed by each)")
    p.add_argument(
        "--csv",
        help="per-image metrics CSV, one --data only (default: test_<data>.csv next to the model, or here for a built-in one)",
    )
    p.add_argument("--save-images", metavar="DIR", help="also write the restored images here (several --data: DIR/<data>/)")
    p.add_argument("--baselines", action="store_true", help="also score the degraded input itself")
    p.add_argument(
        "--report", metavar="DIR", help="write an HTML results report here: index.html with sliders, images beside it"
    )
    _add_runtime_args(p)

    p = sub.add_parser("restore", help="restore a photo or a folder of photos")
    _add_model_args(p)
    p.add_argument("--input", required=True, help="an image file or a folder (searched recursively)")
    p.add_argument(
        "--output",
        required=True,
        help="output folder (PNG files, same relative names), or for one input image an image file (e.g. out.png)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    p.add_argument("--report", metavar="DIR", help="write an HTML page here comparing each photo with its restoration")
    _add_runtime_args(p)

    p = sub.add_parser("curves", help="draw a run's curves.png from its metrics.jsonl (needs the [plots] extra)")
    p.add_argument("run", help="run folder (or its metrics.jsonl)")
    p.add_argument("--output", help="the PNG to write (default: curves.png in the run folder)")

    p = sub.add_parser("convert", help="convert a foreign checkpoint into a restorekit model file")
    p.add_argument("--from", dest="source_format", required=True, help="source format: rain-over-me")
    p.add_argument("src", help="input checkpoint (e.g. latest_net_G.pth)")
    p.add_argument("dst", help="output model file (.safetensors) or folder")
    p.add_argument("--overwrite", action="store_true", help="replace a model file already at the destination")

    p = sub.add_parser("list", help="list registered names of a kind, one per line")
    p.add_argument(
        "kind", help="methods, backbones, detail_blocks, filters, losses, schedulers, synthesizers, or models (built-in)"
    )
    p.add_argument("pattern", nargs="?", help="wildcard, e.g. 'pre*'")

    p = sub.add_parser("info", help="show where a registered name comes from and its arguments")
    p.add_argument("kind")
    p.add_argument("name")

    sub.add_parser("plugins", help="list third-party plugins found through entry points")

    p = sub.add_parser("export", help="export a model's backbone to ONNX (needs the [onnx] extra)")
    _add_model_args(p)
    p.add_argument("--output", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--no-check", action="store_true", help="skip comparing ONNX Runtime's output with PyTorch's")
    return parser


# --------------------------------------------------------------------------- commands
def _cmd_train(args: argparse.Namespace, console: Console) -> int:
    from .config import load_config
    from .engine.run_folder import run_config_file
    from .engine.trainer import Trainer

    overrides = _split_overrides(args)
    config = args.config
    if config is not None and "=" in config and not Path(config).exists():  # `train --resume train.iters=9`
        config, overrides = None, [config, *overrides]
    if config is None:
        if not (args.resume and args.work_dir):
            raise ConfigError("give a config file (or --resume --work-dir RUN to continue a run with its own config)")
        config = run_config_file(Path(args.work_dir))
        if config is None:
            raise ConfigError(f"{args.work_dir} holds no run (no config.yaml); give the config it was started with")
    if args.tensorboard:
        overrides = [*overrides, "train.tensorboard=true"]
    imports = "run" if args.allow_imports else "refuse"
    resolved = load_config(config, overrides, imports=imports)
    trainer = Trainer(resolved, work_dir=args.work_dir, resume=args.resume, allow_changes=args.allow_changes, console=console)
    result = trainer.fit()
    return {"SIGINT": 130, "SIGTERM": 143}.get(result.interrupted or "", 0)


def _cmd_validate(args: argparse.Namespace, console: Console) -> int:
    from .config import load_config

    resolved = load_config(args.config, _split_overrides(args), imports="skip")  # never runs a config's code
    cfg = resolved.config
    console.print(f"{args.config}: valid ({cfg.method}, backbone {cfg.backbone['type']}, {cfg.train.iters} iterations)")
    for note in resolved.notes:
        console.print(f"note: {note}", style="yellow")
    return 0


def _cmd_print_config(args: argparse.Namespace, console: Console) -> int:
    from .config import load_config

    resolved = load_config(args.config, _split_overrides(args), check_data_folders=False, imports="skip")
    print(resolved.to_yaml(), end="")
    return 0


def _load_restorer(args: argparse.Namespace):
    from .device import fast_precision, resolve_device
    from .inference import Restorer
    from .model_file import load_model

    device = resolve_device(args.device)
    loaded = load_model(_model_path(args), device)
    precision, channels_last, compile_ = args.precision, args.channels_last, args.compile
    if args.fast:  # bf16 where it is native (else the --precision asked for), channels-last on a CPU, compiled
        if fast_precision(device) == "bf16":
            precision = "bf16"
        channels_last = channels_last or device.type == "cpu"
        compile_ = True
    restorer = Restorer(
        loaded.backbone, device, precision=precision, channels_last=channels_last, compile=compile_, tile=args.tile
    )
    return loaded, restorer


def _cmd_test(args: argparse.Namespace, console: Console) -> int:
    import json

    from .data.demo import resolve_folder
    from .data.io import write_image
    from .data.pairs import PairedSet
    from .evaluation import evaluate, results_table
    from .progress import TaskProgress
    from .report import open_test_report, write_index

    several = len(args.data) > 1
    if several and args.csv:
        raise ConfigError("--csv names one file: give one --data with it (several sets each get test_<data>.csv)")
    loaded, restorer = _load_restorer(args)
    means = {}
    names: list[str] = []
    reports = []
    for data in args.data:
        folder = resolve_folder(data)
        # A file-name-safe name per set (demo:snow/test -> snow_test); a repeated name gets _2, _3...
        base = data[len("demo:") :].replace("/", "_") if data.startswith("demo:") else folder.name
        set_name, copy = base, 1
        while set_name in names:
            copy += 1
            set_name = f"{base}_{copy}"
        names.append(set_name)
        pairs = PairedSet(folder)
        if len(pairs.report):
            console.print(pairs.report.summary(), style="yellow")
        save_dir = Path(args.save_images) if args.save_images else None
        if save_dir is not None and several:
            save_dir = save_dir / set_name

        report = open_test_report(args, data, folder, set_name if several else None, pairs, loaded, restorer)
        progress = TaskProgress(console, f"test {set_name}", len(pairs))

        def save(name: str, image, save_dir: Path | None = save_dir, report=report, progress=progress) -> None:
            if save_dir is not None:
                write_image(save_dir / f"{name}.png", image)
            if report is not None:
                report.on_image(name, image)
            progress.advance()

        rows = []
        if args.baselines:
            rows.append(evaluate(pairs, lambda image: image, "degraded input"))
        with progress:
            result = evaluate(pairs, restorer, f"{loaded.spec['type']} ({loaded.path.name})", on_image=save)
        rows.append(result)
        console.print(results_table(rows, f"{folder} ({len(pairs)} pairs)"))
        # next to one's own model; for a built-in one (inside the installed package) here
        beside = loaded.path.parent if args.checkpoint else Path.cwd()
        csv_path = Path(args.csv) if args.csv else beside / f"test_{set_name}.csv"
        result.write_csv(csv_path)
        console.print(f"per-image metrics: {csv_path}")
        if report is not None:
            reports.append(report.finish_and_say(result, console))
        means[data] = result.means
    if args.json:
        if several:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(means, indent=2) + "\n", encoding="utf-8")
        else:
            result.write_json(args.json)
        console.print(f"means: {args.json}")
    if several and reports:
        console.print(f"report: {write_index(args.report, 'restorekit test: ' + ', '.join(args.data), reports)}")
    return 0


def _output_paths(images: list[Path], source: Path, output: Path) -> list[tuple[Path, Path]]:
    """Each image's PNG in ``output``, at its relative path: ``a.jpg`` → ``a.png``. Photos that would
    share a PNG (``a.jpg`` and ``a.tif``) keep their extension in it (``a.jpg.png``, ``a.tif.png``),
    and a name still taken (by a photo named ``a.jpg.png``) gets a number (``a.jpg-2.png``), so every
    photo gets an output of its own."""
    preferred = [output / p.relative_to(source).with_suffix(".png") for p in images]
    counts: dict[Path, int] = {}
    for target in preferred:
        counts[target] = counts.get(target, 0) + 1
    taken = {t for t in preferred if counts[t] == 1}
    targets: list[Path] = []
    for image, target in zip(images, preferred):
        if counts[target] > 1:
            target = output / image.relative_to(source).with_name(image.name + ".png")
            number = 1
            while target in taken:
                number += 1
                target = output / image.relative_to(source).with_name(f"{image.name}-{number}.png")
            taken.add(target)
        targets.append(target)
    return list(zip(images, targets))


def _restore_jobs(source: Path, output: Path, overwrite: bool) -> list[tuple[Path, Path]]:
    """The (input, output) files of a restore, refusing before any work whatever would overwrite
    an input photo or, without ``overwrite``, an existing file."""
    from .data.io import IMAGE_EXTENSIONS, list_images

    if not source.exists():
        raise ConfigError(f"--input {source}: no such file or folder")
    names_a_file = output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir()
    if source.is_file():
        target = output if names_a_file else output / f"{source.stem}.png"
        if target.resolve() == source.resolve():
            raise ConfigError(f"--output {target} is the input photo itself: it would be overwritten; choose another name")
        jobs = [(source, target)]
    else:
        if names_a_file:
            raise ConfigError(f"--output {output} names an image file, but --input {source} is a folder: give a folder")
        inside, outside = source.resolve(), output.resolve()
        if outside == inside:
            raise ConfigError(
                f"--output {output} is the input folder: the restored photos would replace the originals; "
                "choose another folder"
            )
        if inside in outside.parents:
            raise ConfigError(
                f"--output {output} is inside the input folder {source}: the next restore of that folder would restore "
                "the results again; choose a folder outside it"
            )
        jobs = _output_paths(list_images(source), source, output)
    existing = [target for _, target in jobs if target.exists()]
    if existing and not overwrite:
        shown = ", ".join(str(t) for t in existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise ConfigError(f"{len(existing)} output file(s) already exist ({shown}); pass --overwrite to replace them")
    return jobs


def _cmd_restore(args: argparse.Namespace, console: Console) -> int:
    from .data.io import is_animated_gif, read_bytes, read_image, write_image
    from .errors import ImageReadError
    from .inference import restore_files
    from .progress import TaskProgress
    from .report import open_restore_report

    source, output = Path(args.input).expanduser(), Path(args.output).expanduser()
    jobs = _restore_jobs(source, output, args.overwrite)  # refused before the model is even loaded
    loaded, restorer = _load_restorer(args)
    failed = 0
    report = open_restore_report(args, source, loaded, restorer)
    # Decoding the next photo and encoding the last one overlap the network's work on this one.
    with TaskProgress(console, "restore", len(jobs)) as progress:
        for result in restore_files(
            restorer, jobs, read=read_image, write=write_image, skip=(ImageReadError,),
            on_image=report.on_image if report is not None else None,
        ):
            if result.error is not None:
                failed += 1
                progress.print(f"skipped {result.error}", style="yellow")
            elif result.source.suffix.lower() == ".gif" and is_animated_gif(read_bytes(result.source)):
                progress.print(f"{result.source}: an animated GIF; restored its first frame into {result.target}")
            progress.advance()
    if failed == len(jobs):
        console.print(f"error: none of the {len(jobs)} image(s) could be read (each is listed above); nothing restored")
        return 2
    where = jobs[0][1] if source.is_file() else output
    console.print(f"restored {len(jobs) - failed} image(s) into {where}" + (f"; {failed} skipped" if failed else ""))
    if report is not None:
        console.print(f"report: {report.finish()}")
    return 0


def _cmd_curves(args: argparse.Namespace, console: Console) -> int:
    from .engine.metrics_log import draw_run_curves

    console.print(f"curves: {draw_run_curves(args.run, args.output)}")
    return 0


def _cmd_export(args: argparse.Namespace, console: Console) -> int:
    from .export import check_onnx, export_onnx
    from .model_file import load_model

    loaded = load_model(_model_path(args), "cpu")
    path = export_onnx(loaded.backbone, args.output, opset=args.opset)
    console.print(f"wrote {path} (input 'image': N×3×H×W float in [0, 1], any H and W; output 'restored')")
    if not args.no_check:
        report = check_onnx(loaded.backbone, path)
        console.print(f"ONNX Runtime matches PyTorch: max abs difference {report.max_abs_diff:.2e} over {report.shapes}")
    return 0


def _cmd_convert(args: argparse.Namespace, console: Console) -> int:
    from .convert import convert

    path = convert(args.source_format, args.src, args.dst, overwrite=args.overwrite)
    console.print(f"wrote {path}")
    return 0


def _cmd_list(args: argparse.Namespace, console: Console) -> int:
    from .registries import get_registry

    if args.kind in ("models", "model"):  # the built-in trained models, with what each is
        import fnmatch

        from .deploy import BUILTIN_MODELS

        for name in sorted(BUILTIN_MODELS):
            if args.pattern is None or fnmatch.fnmatchcase(name, args.pattern):
                print(f"{name}\t{BUILTIN_MODELS[name].description}")
        return 0
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


def _disable_plugins() -> None:
    """Turn plugin discovery off for this process and the processes it starts.

    The environment variable, rather than a flag on the registries, also reaches data-loader
    workers and any subprocess; the refresh drops what an earlier call may have discovered.
    """
    from .registries import REGISTRIES
    from .registry import PLUGINS_ENV

    os.environ[PLUGINS_ENV] = "1"
    for registry in REGISTRIES.values():
        registry.refresh()


COMMANDS = {
    "train": _cmd_train,
    "validate": _cmd_validate,
    "print-config": _cmd_print_config,
    "test": _cmd_test,
    "restore": _cmd_restore,
    "curves": _cmd_curves,
    "convert": _cmd_convert,
    "export": _cmd_export,
    "list": _cmd_list,
    "info": _cmd_info,
    "plugins": _cmd_plugins,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    # Overrides may come after options too (`train cfg.yaml --resume train.iters=10`), which
    # argparse alone does not allow for a positional list.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*(args.overrides or []), *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.no_plugins:
        _disable_plugins()
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
    except OSError as exc:
        if args.debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        console.print(f"error: {exc.strerror or exc}{where}", style="red")
        # A full or failing disk fails the run (1); a path that is a file, unwritable, etc. is input (2).
        return 1 if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ENOMEM) else 2
    except (MemoryError, RuntimeError) as exc:
        text = str(exc)
        if args.debug:
            raise
        # torch says "CUDA out of memory" on a GPU and "DefaultCPUAllocator: not enough memory" on a CPU.
        if not (isinstance(exc, MemoryError) or any(w in text for w in ("out of memory", "not enough memory",
                                                                         "allocate memory"))):
            return _internal_error(exc, console)
        first = text.strip().splitlines()[0] if text.strip() else "MemoryError"
        if args.command in ("restore", "test"):
            advice = "restore in tiles: --tile 512 gives the same result with memory bounded by the tile, not the image"
        else:
            advice = "use smaller images, a smaller data.batch_size or data.crop_size, or data.in_memory=false"
        console.print(f"error: out of memory ({first[:200]}); {advice}", style="red")
        return 1
    except Exception as exc:  # a bug, not bad input: say so in one line rather than a traceback
        if args.debug:
            raise
        return _internal_error(exc, console)


def _internal_error(exc: BaseException, console: Console) -> int:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    console.print(
        f"error: {type(exc).__name__}: {first} (an internal error of restorekit, not of your input; "
        "rerun with --debug to see where, and please report it)",
        style="red",
    )
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
