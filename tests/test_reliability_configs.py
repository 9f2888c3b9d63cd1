"""Issue #8, configs and the command line: every mistake fails before any work, naming the key
path and what was expected (with a did-you-mean for names), and the command line prints one
``error: ...`` line and exits 2, never a traceback.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from restorekit.cli import main
from restorekit.config import load_config, parse_override
from restorekit.data.io import write_image
from restorekit.model_file import save_model
from restorekit.errors import ConfigError
from restorekit.registries import BACKBONES
from restorekit.testing import make_photo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("photos")
    for i in range(2):
        write_image(root / "rainy" / f"r{i}.png", make_photo(i))
        write_image(root / "clean" / f"c{i}.png", make_photo(10 + i))
        write_image(root / "pairs" / "rain" / f"p{i}.png", make_photo(20 + i))
        write_image(root / "pairs" / "gt" / f"p{i}.png", make_photo(30 + i))
    (root / "empty").mkdir()
    (root / "texts").mkdir()
    (root / "texts" / "readme.txt").write_text("no photos here")
    return {k: root / k for k in ("rainy", "clean", "pairs", "empty", "texts")}


@pytest.fixture
def config(tmp_path, data) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "method: dt\n"
        "backbone: {type: hagg, channels: 4, num_blocks: 2}\n"
        "dt: {soft_label: {type: median, kernel_size: 3}}\n"
        f"data: {{rainy: '{data['rainy']}', clean: '{data['clean']}', crop_size: 32, batch_size: 2}}\n"
        "train: {iters: 2, log_every: 1, sample_every: 0}\n"
        "eval: {data: null}\n"
        "runtime: {device: cpu}\n",
        encoding="utf-8",
    )
    return path


def error_of(exc: ConfigError) -> tuple[str | None, str]:
    return exc.path, str(exc)


# --------------------------------------------------------------------------- overrides
BAD_OVERRIDES = [
    # (override, key path named, words the message must hold)
    ("trian.iters=5", "trian", "unknown key 'trian'. Did you mean 'train'?"),
    ("train.itres=5", "train.itres", "Did you mean 'iters'?"),
    ("train.iters=many", "train.iters", "expected int, got 'many' (str)"),
    ("train.iters=-5", "train.iters", "must be >= 1, got -5"),
    ("train.iters=2.5", "train.iters", "expected int, got 2.5"),
    ("train.iters=1e400", "train.iters", "expected a finite number, got inf"),
    ("train.lr=.nan", "train.lr", "expected a finite number, got nan"),
    ("train.lr=-.inf", "train.lr", "expected a finite number"),
    ("train.lr=[1]", "train.lr", "expected float"),
    ("train.betas=[0.9]", "train.betas", "expected a list of 2 values (float, float), got [0.9]"),
    ("train.seed=-1", "train.seed", "must be between 0 and 2**63 - 1"),
    ("data.crop_size=4", "data.crop_size", "must be >= 8"),
    ("data.batch_size=0", "data.batch_size", "must be >= 1"),
    ("data.on_bad_image=ignore", "data.on_bad_image", "expected one of 'skip', 'stop'"),
    ("data.rainy=/no/such/folder", "data.rainy", "data folder '/no/such/folder' does not exist"),
    ("method=dtt", "method", "unknown method 'dtt'. Did you mean 'dt'?"),
    ("backbone.type=hag", "backbone.type", "unknown backbone 'hag'. Did you mean 'hagg'?"),
    ("backbone.num_blocks=3", "backbone", "hagg num_blocks must be an even number >= 2, got 3"),
    ("backbone.chanels=8", "backbone.chanels", "hagg' has no argument 'chanels'. Did you mean 'channels'"),
    ("backbone={type: hagg, channels: -1}", "backbone", "hagg channels must be a whole number >= 1, got -1"),
    ("dt.soft_label.kernel_size=30", "dt.soft_label", "median kernel_size must be an odd integer >= 3, got 30"),
    ("dt.soft_label.kernel_size=thirty", "dt.soft_label.kernel_size", "expected int, got 'thirty'"),
    ("dt.soft_label.type=medain", "dt.soft_label.type", "unknown filter 'medain'. Did you mean 'median'"),
    ("dt.soft_loss.type=sssim", "dt.soft_loss.type", "Did you mean 'ssim'?"),
    ("dt.weights.type=dynamc", "dt.weights.type", "Did you mean 'dynamic'?"),
    ("train.lr_schedule.type=dynamic", "train.lr_schedule", "is a loss_weights schedule; this key needs a lr schedule"),
    ("dt.hard_pair_gain=[.nan, 2]", "dt.hard_pair_gain[0]", "expected a finite number"),
    ("imports=[no_such_module_xyz]", "imports", "restorekit runs no code a config names unless you allow it"),
    ("train.iters.deeper=1", None, "'train.iters' is 2, not a mapping, so it has no key 'deeper'"),
    # overrides that do not parse
    ("train.iters", None, "override 'train.iters' must look like key.path=value"),
    ("=5", None, "'' is not a dotted key path like train.iters"),
    ("train..iters=3", None, "'train..iters' is not a dotted key path"),
    ("train.iters: 5", None, "must look like key.path=value"),
    ("train.iters=[1,", "train.iters", "not valid YAML: while parsing a flow node, expected the node content"),
    ("train.iters={", "train.iters", "not valid YAML"),
    ("train.iters=\x00", "train.iters", "not valid YAML: unacceptable character"),
    ("train.iters=&a [*a]", "train.iters", "expands to more than 64 levels"),
    ("train.iters=" + "[" * 5000, "train.iters", "not valid YAML: nested more than 64 levels deep"),
    ("train.iters=!!python/object/apply:os.system ['echo hi']", "train.iters", "could not determine a constructor"),
]


@pytest.mark.parametrize("override, key, words", BAD_OVERRIDES, ids=[o[:40] for o, _, _ in BAD_OVERRIDES])
def test_bad_override_fails_before_any_work_naming_the_key(config, override, key, words):
    with pytest.raises(ConfigError) as info:
        load_config(config, [override])
    path, message = error_of(info.value)
    assert path == key, message
    assert words in message
    if key is not None:
        assert f"key '{key}'" in message
    assert len(message) < 1200 and "\n" not in message  # one readable line, even for 5000 brackets


def test_a_good_override_still_parses_and_nothing_executes(tmp_path, config):
    marker = tmp_path / "pwned"
    with pytest.raises(ConfigError):
        parse_override(f"train.iters=!!python/object/apply:os.system ['touch {marker}']")
    assert not marker.exists()
    resolved = load_config(config, ["train.iters=7", "train.betas=[0.9, 0.99]", "backbone={type: hagg, channels: 8}"])
    assert resolved.config.train.iters == 7 and resolved.config.backbone["channels"] == 8


# --------------------------------------------------------------------------- config files
BAD_FILES = [
    ("unknown key", "trainn: {iters: 5}\n", "trainn", "unknown key 'trainn'. Did you mean 'train'?"),
    ("nested unknown", "train: {iter: 5}\n", "train.iter", "Did you mean 'iters'?"),
    ("wrong type", "train: {iters: '10'}\n", "train.iters", "expected int, got '10' (str)"),
    ("section not a mapping", "train: 5\n", "train", "expected a mapping of options, got 5"),
    ("negative iterations", "train: {iters: -100}\n", "train.iters", "must be >= 1"),
    ("even kernel", "dt: {soft_label: {type: median, kernel_size: 32}}\n", "dt.soft_label", "must be an odd"),
    ("unknown backbone", "backbone: {type: prenett}\n", "backbone.type", "Did you mean 'prenet'"),
    ("duplicate key", "train: {iters: 5}\ntrain: {iters: 6}\n", None, "duplicate key 'train'"),
    ("not YAML", "train: {iters: 5\n", None, "not valid YAML"),
    ("nan", "train: {lr: .NaN}\n", "train.lr", "expected a finite number"),
    ("python object", "train: !!python/object/new:os.system ['echo hi']\n", None, "could not determine a constructor"),
    ("python name", "train: {iters: !!python/name:os.system ''}\n", None, "could not determine a constructor"),
]


@pytest.mark.parametrize("text, key, words", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_config_file_fails_naming_the_file_and_key(tmp_path, data, text, key, words):
    path = tmp_path / "bad.yaml"
    path.write_text(
        f"data: {{rainy: '{data['rainy']}', clean: '{data['clean']}'}}\neval: {{data: null}}\n" + text, encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == key and words in str(info.value)
    assert str(path) in str(info.value)


def test_config_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml: a config file must hold a mapping at the top, got list"):
        load_config(path)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["a0: [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]  # 10**10 values
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(f"{line.split(':')[0]}: &{line.split(':')[0]}{line.split(':', 1)[1]}" for line in lines))
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than 100000 values"):
        load_config(path)
    assert time.perf_counter() - started < 5


def test_data_folders_are_checked_before_any_work(tmp_path, config, data):
    cases = [
        (f"data.rainy={data['empty']}", "data.rainy", "no image files found", "it is empty"),
        (f"data.clean={data['texts']}", "data.clean", "no image files found", "1 other file(s), e.g. readme.txt"),
        (f"eval.data={data['rainy']}", "eval.data", "a paired folder needs 'rain/' (degraded)", "missing: rain/, gt/"),
        ("method=sv", "data.paired", "method 'sv' needs a data folder here", ""),
    ]
    for override, key, *words in cases:
        with pytest.raises(ConfigError) as info:
            load_config(config, [override])
        assert info.value.path == key and all(w in str(info.value) for w in words), str(info.value)
    (data["pairs"] / "gt" / "extra.png").write_bytes((data["pairs"] / "gt" / "p0.png").read_bytes())
    try:
        with pytest.raises(ConfigError, match=r"key 'eval.data': .*unmatched file names; only in gt/ \(1\): extra"):
            load_config(config, [f"eval.data={data['pairs']}"])
    finally:
        (data["pairs"] / "gt" / "extra.png").unlink()
    assert load_config(config, [f"eval.data={data['pairs']}"]).config.eval.data == str(data["pairs"])


def test_crop_larger_than_every_image_fails_before_training(tmp_path, config, capsys):
    work = tmp_path / "run"
    assert main(["train", str(config), "data.crop_size=64", "--work-dir", str(work)]) == 2
    out = capsys.readouterr().out
    assert "error: key 'data.crop_size': 64 is larger than every image in" in out
    assert "(2 image(s); the largest is 48×48, whose shorter side is 48); set data.crop_size to at most 48" in out
    assert "iter " not in out and not (work / "checkpoints").exists()


# --------------------------------------------------------------------------- the command line
@pytest.fixture
def model_file(tmp_path) -> Path:
    net = BACKBONES.build({"type": "hagg", "channels": 4, "num_blocks": 2})
    return save_model(tmp_path / "model.safetensors", {"backbone": net}, {"backbone": {"type": "hagg", "channels": 4,
                                                                                          "num_blocks": 2}})


def cli_cases(tmp_path: Path, config: Path, data: dict[str, Path], model: Path) -> list[tuple[list[str], str]]:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    huge_header = tmp_path / "huge_header.safetensors"
    huge_header.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("train: [\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"")
    return [
        (["train", str(tmp_path / "missing.yaml")], "config file not found"),
        (["validate", str(bad_yaml)], "not valid YAML"),
        (["print-config", str(config), "train.iters=[1,"], "not valid YAML"),
        (["validate", str(config), "train.iterz=5"], "Did you mean 'iters'?"),
        (["train", str(config), "data.rainy=/no/such/folder"], "does not exist"),
        (["train", str(config), "train.iters"], "must look like key.path=value"),
        (["train", str(config), "--work-dir", str(a_file)], "a_file"),
        (["test", "--checkpoint", str(tmp_path / "nothing"), "--data", str(data["pairs"])], "no such checkpoint"),
        (["test", "--checkpoint", str(garbage), "--data", str(data["pairs"])], "not a readable safetensors model file"),
        (["test", "--checkpoint", str(huge_header), "--data", str(data["pairs"])], "not a readable safetensors"),
        (["test", "--checkpoint", str(model), "--data", str(data["rainy"])], "a paired folder needs 'rain/'"),
        (["restore", "--checkpoint", str(model), "--input", str(data["empty"]), "--output", str(tmp_path / "o")],
         "no image files found"),
        (["restore", "--checkpoint", str(model), "--input", str(only_bad), "--output", str(tmp_path / "o")],
         "none of the 1 image(s) could be read"),
        (["restore", "--checkpoint", str(model), "--input", str(tmp_path / "no.png"), "--output", "o"], "no such file or folder"),
        (["convert", "--from", "rain-over-me", str(tmp_path / "missing.pth"), str(tmp_path / "o.safetensors")],
         "file not found"),
        (["convert", "--from", "rain-ovr-me", str(tmp_path / "x.pth"), str(tmp_path / "o.safetensors")],
         "Did you mean 'rain-over-me'?"),
        (["list", "backbone_s"], "unknown registry"),
        (["info", "backbones", "hag"], "Did you mean 'hagg'?"),
    ]


def test_every_cli_error_is_one_error_line_and_status_2(tmp_path, config, data, model_file, capsys):
    for argv, words in cli_cases(tmp_path, config, data, model_file):
        status = main(argv)  # an uncaught exception here would be the traceback a user sees
        out = capsys.readouterr()
        text = out.out + out.err
        errors = [line for line in text.splitlines() if line.startswith("error: ")]
        assert status == 2, (argv, text)
        assert len(errors) == 1 and words in errors[0], (argv, text)
        assert "Traceback" not in text


def test_overrides_may_follow_options(tmp_path, config, capsys):
    assert main(["validate", str(config), "--set", "train.iters=3", "train.lr=0.001"]) == 0
    assert "3 iterations" in capsys.readouterr().out
    for argv in (["validate", str(config), "--bogus"], ["restore", "--checkpoint", "m", "--input", "i", "--output", "o",
                                                        "--tile", "0"]):
        with pytest.raises(SystemExit) as info:  # argparse's own usage error, status 2
            main(argv)
        assert info.value.code == 2
    assert "argument --tile: expected a number >= 1, got 0" in capsys.readouterr().err


def test_restore_skips_bad_files_and_keeps_odd_names(tmp_path, data, model_file, capsys):
    src = tmp_path / "in"
    write_image(src / "ünïcödé name 雨.png", make_photo(1))
    write_image(src / "sub dir" / "b.png", make_photo(2))
    write_image(src / "sub dir" / "b.jpg", make_photo(3))  # would share b.png's output name
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    argv = ["restore", "--checkpoint", str(model_file), "--input", str(src), "--output", str(tmp_path / "out")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"skipped {src / 'broken.jpg'}: not a decodable image" in out and "restored 3 image(s)" in out
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "sub dir/b.jpg.png", "sub dir/b.png.png", "ünïcödé name 雨.png"
    ]
