"""A model package on disk: a folder or ``.zip`` with ``manifest.toml``, ONNX weights and ``MODEL_CARD.md``.

The SHA-256 of the weights is written in the manifest and checked every time the weights are loaded
(:meth:`ModelPackage.load_weights`): a package whose weights changed after it was built refuses to run,
with an error saying which file, both digests and what to do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from radgate.errors import Invalid
from radgate.models.manifest import Manifest, ManifestError, Weights

__all__ = [
    "MANIFEST_NAME",
    "MODEL_CARD_NAME",
    "ModelPackage",
    "PackageError",
    "PackageIntegrityError",
    "sha256_hex",
    "write_package",
]

MANIFEST_NAME = "manifest.toml"
MODEL_CARD_NAME = "MODEL_CARD.md"


class PackageError(Invalid, ValueError):
    """A package cannot be read: missing file, unreadable zip, invalid manifest."""


class PackageIntegrityError(PackageError):
    """The weights' SHA-256 differs from the manifest's: the package was altered or damaged."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ModelPackage:
    """An opened package: its checked manifest, its model card, and access to its files.

    ``root`` is the folder, or the path of the ``.zip`` (then ``prefix`` is the folder inside the zip that
    holds ``manifest.toml``, often ``""``).
    """

    root: Path
    manifest: Manifest
    model_card: str
    prefix: str = ""

    @property
    def is_zip(self) -> bool:
        return self.root.is_file()

    @property
    def label(self) -> str:
        return f"{self.manifest.name} {self.manifest.version}"

    @classmethod
    def open(cls, path: Path | str) -> ModelPackage:
        """Open a folder or ``.zip`` and check its manifest (:meth:`load_weights` hashes the weights)."""
        root = Path(path)
        prefix = ""
        if root.is_dir():
            manifest_bytes = _read_folder(root, MANIFEST_NAME)
            card_bytes = _read_folder(root, MODEL_CARD_NAME)
        elif root.is_file() and zipfile.is_zipfile(root):
            with zipfile.ZipFile(root) as zf:
                prefix = _zip_prefix(root, zf)
                manifest_bytes = _read_zip(root, zf, prefix + MANIFEST_NAME)
                card_bytes = _read_zip(root, zf, prefix + MODEL_CARD_NAME)
        elif root.exists():
            raise PackageError(
                f"{str(root)!r} is neither a folder nor a .zip file; a model package is one of those."
            )
        else:
            raise PackageError(f"Model package {str(root)!r} does not exist.")
        try:
            manifest = Manifest.from_toml(manifest_bytes.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise PackageError(f"{MANIFEST_NAME} in {str(root)!r} is not UTF-8 text: {exc}") from exc
        except ManifestError as exc:
            raise PackageError(f"{MANIFEST_NAME} in {str(root)!r}: {exc}") from exc
        return cls(
            root=root,
            manifest=manifest,
            model_card=card_bytes.decode("utf-8", errors="replace"),
            prefix=prefix,
        )

    def read(self, name: str) -> bytes:
        """The bytes of file ``name`` (relative to the package root)."""
        if self.is_zip:
            with zipfile.ZipFile(self.root) as zf:
                return _read_zip(self.root, zf, self.prefix + name)
        return _read_folder(self.root, name)

    def weights_sha256(self) -> str:
        return sha256_hex(self.read(self.manifest.weights.file))

    def load_weights(self) -> bytes:
        """The ONNX weights, after checking their SHA-256 against the manifest.

        Raises :class:`PackageIntegrityError` when they differ: such a package never runs.
        """
        data = self.read(self.manifest.weights.file)
        actual = sha256_hex(data)
        expected = self.manifest.weights.sha256
        if actual != expected:
            raise PackageIntegrityError(
                f"Model {self.label}: SHA-256 of {self.manifest.weights.file} is {actual}, "
                f"but its manifest says "
                f"{expected}. The package was altered or damaged after it was built; refusing to run it. "
                f"Reinstall the vendor's package (radgate models add PATH) or ask the vendor for a new one."
            )
        return data

    def files(self) -> list[str]:
        """Every file in the package, relative to its root."""
        if self.is_zip:
            with zipfile.ZipFile(self.root) as zf:
                return sorted(
                    n[len(self.prefix) :]
                    for n in zf.namelist()
                    if n.startswith(self.prefix) and not n.endswith("/")
                )
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())


def _read_folder(root: Path, name: str) -> bytes:
    path = root / name
    if not path.is_file():
        raise PackageError(f"Model package {str(root)!r} has no {name}; every package needs one.")
    return path.read_bytes()


def _zip_prefix(root: Path, zf: zipfile.ZipFile) -> str:
    """The folder inside the zip that holds ``manifest.toml``: the root, or the single top-level folder."""
    names = zf.namelist()
    if MANIFEST_NAME in names:
        return ""
    candidates = sorted(n for n in names if PurePosixPath(n).name == MANIFEST_NAME and n.count("/") == 1)
    if len(candidates) == 1:
        return candidates[0][: -len(MANIFEST_NAME)]
    raise PackageError(
        f"Zip {str(root)!r} has {len(candidates)} manifest.toml files one folder deep and none at its root; "
        f"expected manifest.toml at the root or in exactly one top-level folder."
    )


def _read_zip(root: Path, zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError as exc:
        raise PackageError(f"Zip {str(root)!r} has no {name}; every package needs one.") from exc


def write_package(
    dest: Path,
    manifest: Manifest,
    weights: bytes,
    model_card: str,
    as_zip: bool = False,
) -> ModelPackage:
    """Write a package to ``dest`` (a folder, or a ``.zip`` when ``as_zip``), recording the weights' SHA-256.

    The manifest's ``weights.sha256`` is replaced by the digest of ``weights``, so training scripts can
    build a manifest before they know it.
    """
    manifest = dataclasses.replace(manifest, weights=Weights(manifest.weights.file, sha256_hex(weights)))
    files = {
        MANIFEST_NAME: manifest.to_toml().encode("utf-8"),
        manifest.weights.file: weights,
        MODEL_CARD_NAME: model_card.encode("utf-8"),
    }
    dest = Path(dest)
    if as_zip:
        dest.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
        dest.write_bytes(buf.getvalue())
    else:
        dest.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(data)
    return ModelPackage.open(dest)
