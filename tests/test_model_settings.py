"""[model], [train] and [export] in taxreg.toml and the `taxreg build` options over them: what each gives the
model stages, and one message naming the key and the fix for what cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.settings import ModelSettings, SettingsError, TrainSettings, load


def settings(tmp_path: Path, text: str) -> ModelSettings:
    path = tmp_path / "taxreg.toml"
    path.write_text(text, encoding="utf-8")
    return load(path).model


def test_no_sections_are_the_embedded_default(tmp_path: Path) -> None:
    assert settings(tmp_path, "") == ModelSettings() and load(tmp_path / "absent.toml").model == ModelSettings()
    assert ModelSettings().base is None and ModelSettings().variants == ("fp32", "int8")


def test_every_setting_is_read(tmp_path: Path) -> None:
    (tmp_path / "models" / "smol").mkdir(parents=True)
    model = settings(tmp_path, '[model]\nbase = "models/smol"\n\n[train]\nrank = 8\nalpha = 16\n'
                               'targets = ["q_proj", "v_proj"]\nepochs = 2\nlr = 1e-4\nbatch_size = 2\n'
                               'max_length = 1024\n\n[export]\nvariants = ["int4", "fp32"]\ndevice = "cuda"\n'
                               'int8_fp32_share = 0\n')
    assert model.base == tmp_path / "models" / "smol"  # relative to taxreg.toml's folder
    assert model.train == TrainSettings(rank=8, alpha=16, targets=("q_proj", "v_proj"), epochs=2.0, lr=1e-4,
                                        batch_size=2, max_length=1024)
    assert model.variants == ("fp32", "int4") and model.device == "cuda" and model.int8_fp32_share == 0
    assert settings(tmp_path, '[train]\ntargets = "all-linear"\nsteps = 5\n').train.given() == {
        "targets": ("all-linear",), "steps": 5}


@pytest.mark.parametrize(("text", "named"), [
    ('[model]\nbase = "nowhere"\n', "[model] base = 'nowhere': no folder at"),
    ("[model]\nbase = 3\n", "[model] base = 3 is not a local Hugging Face causal-LM folder"),
    ('[model]\nbasis = "x"\n', "unknown setting in [model]: basis"),
    ("[train]\nsteps = 0\n", "[train] steps = 0 is not a whole number >= 1"),
    ("[train]\nsteps = 2.5\n", "[train] steps = 2.5 is not"),
    ("[train]\nlr = 2\n", "[train] lr = 2 is not a number in (0, 1)"),
    ("[train]\nmax_length = 4\n", "[train] max_length = 4 is not a whole number >= 8"),
    ("[train]\ntargets = []\n", "[train] targets = [] is not"),
    ("[train]\nrank = true\n", "[train] rank = True is not"),
    ("[train]\nsteps = 10\nepochs = 1\n", "steps or epochs, not both"),
    ("[train]\nwarmup = 3\n", "unknown setting in [train]: warmup"),
    ('[export]\nvariants = ["int8"]\n', "variants = ['int8'] is not a list of fp32, int8, int4 that holds fp32"),
    ('[export]\nvariants = ["fp32", "fp16"]\n', "[export] variants = ['fp32', 'fp16'] is not"),
    ('[export]\ndevice = "tpu"\n', "[export] device = 'tpu' is not"),
    ("[export]\nint8_fp32_share = 1.5\n", "[export] int8_fp32_share = 1.5 is not a share between 0 and 1"),
    ("model = 1\n", "[model] must be a table"),
])
def test_bad_settings_name_the_key_and_the_fix(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings(tmp_path, text)
    assert named in str(caught.value) and caught.value.hint


def test_build_options_override_taxreg_toml(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    toml = settings(tmp_path, '[model]\nbase = "a"\n[train]\nsteps = 10\nlr = 0.001\n[export]\nvariants = ["fp32"]\n')
    kept = toml.over(None, TrainSettings(), None)
    assert kept == toml
    over = toml.over(tmp_path / "b", TrainSettings(epochs=0.5, batch_size=2), ["fp32", "int8", "int4"])
    assert over.base == tmp_path / "b" and over.variants == ("fp32", "int8", "int4")
    # --train-epochs replaces [train] steps (one choice), the rest of [train] stays
    assert over.train == TrainSettings(epochs=0.5, lr=0.001, batch_size=2)
    with pytest.raises(SettingsError, match="--variant int8: the export variants are"):
        toml.over(None, TrainSettings(), ["int8"])
    with pytest.raises(SettingsError, match="epochs must be > 0"):
        TrainSettings(epochs=-1)
