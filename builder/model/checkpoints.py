"""Checkpoints of `taxreg train`: one folder per fingerprint (every setting that shapes the adapter, plus the hashes
of its inputs), so a rerun of the same command resumes and a changed one starts fresh beside it."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

from builder.model.train_options import RESULT_KEYS, Inputs, TrainOptions


def fingerprint(options: TrainOptions, inputs: Inputs, threads: int, world_size: int) -> str:
    key = {"params": {k: v for k, v in options.params(threads).items() if k in RESULT_KEYS},
           "base": inputs.base.artifact_id, "world_size": world_size,
           "data": {split: f.sha256 for split, f in sorted(inputs.files.items())}}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def resume_point(args: Any, resume: bool) -> Path | None:
    """The newest complete checkpoint; rank 0 clears the folder first with --no-resume and drops partial or
    damaged checkpoints (a kill during a save leaves one without trainer_state.json; a full disk or a copy cut
    short, a truncated file), so a run resumes from the newest intact one, or starts over when none is."""
    folder = Path(args.output_dir)
    with args.main_process_first(desc="checkpoint folder"):
        if args.process_index == 0:
            if not resume:
                shutil.rmtree(folder, ignore_errors=True)
            for partial in _checkpoints(folder, complete=False):
                shutil.rmtree(partial, ignore_errors=True)
        found = _checkpoints(folder, complete=True)
    if args.max_steps > 0:
        # A checkpoint at the last step is a finished run: the Trainer resumed from it takes one step more (it
        # skips that many batches, then steps before checking max_steps). Resume before it: the same result.
        found = [c for c in found if int(c.name.rsplit("-", 1)[1]) < args.max_steps]
    return found[-1] if found else None


def _checkpoints(folder: Path, complete: bool) -> list[Path]:
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob("checkpoint-*"):
        if path.name.rsplit("-", 1)[1].isdigit() and _complete(path) == complete:
            found.append(path)
    return sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[1]))


def _complete(checkpoint: Path) -> bool:
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(state, dict) and "global_step" in state and (checkpoint / "optimizer.pt").is_file()
            and all(_intact(path) for path in sorted(checkpoint.iterdir())))


def _intact(path: Path) -> bool:
    """torch.save files are zip archives (every member's CRC is checked); safetensors state their own length."""
    if path.suffix in (".pt", ".pth", ".bin"):
        try:
            with zipfile.ZipFile(path) as archive:
                return archive.testzip() is None
        except (OSError, zipfile.BadZipFile, EOFError):
            return False
    if path.suffix == ".safetensors":
        return _safetensors_intact(path)
    return True


def _safetensors_intact(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            header_size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_size))
        ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
        return path.stat().st_size == 8 + header_size + max(ends, default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return False

