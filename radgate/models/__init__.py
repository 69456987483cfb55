"""Model packages: the manifest, the hash-checked package on disk, and the registry of installed versions.

The names below are imported on first use (PEP 562): :mod:`radgate.models.installed` (what ``radgate models
list`` needs) imports neither SQLAlchemy nor the registry's table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from radgate.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from radgate.models.manifest import (
        Code,
        Explanation,
        Finding,
        IntendedUse,
        Manifest,
        ManifestError,
        ModelInfo,
        OperatingPoint,
        OutputSpec,
        Preprocessing,
        TrainingData,
        Weights,
    )
    from radgate.models.package import (
        ModelPackage,
        PackageError,
        PackageIntegrityError,
        sha256_hex,
        write_package,
    )
    from radgate.models.registry import (
        InstalledModel,
        RegistryError,
        VerifyReport,
        add_model,
        ensure_default_models,
        get_model,
        list_models,
        open_model,
        remove_model,
        verify_model,
    )

__all__ = [
    "Code",
    "Explanation",
    "Finding",
    "InstalledModel",
    "IntendedUse",
    "Manifest",
    "ManifestError",
    "ModelInfo",
    "ModelPackage",
    "OperatingPoint",
    "OutputSpec",
    "PackageError",
    "PackageIntegrityError",
    "Preprocessing",
    "RegistryError",
    "TrainingData",
    "VerifyReport",
    "Weights",
    "add_model",
    "ensure_default_models",
    "get_model",
    "list_models",
    "open_model",
    "remove_model",
    "sha256_hex",
    "verify_model",
    "write_package",
]

_HOMES = {
    "Code": "radgate.models.manifest",
    "Explanation": "radgate.models.manifest",
    "Finding": "radgate.models.manifest",
    "IntendedUse": "radgate.models.manifest",
    "Manifest": "radgate.models.manifest",
    "ManifestError": "radgate.models.manifest",
    "ModelInfo": "radgate.models.manifest",
    "OperatingPoint": "radgate.models.manifest",
    "OutputSpec": "radgate.models.manifest",
    "Preprocessing": "radgate.models.manifest",
    "TrainingData": "radgate.models.manifest",
    "Weights": "radgate.models.manifest",
    "ModelPackage": "radgate.models.package",
    "PackageError": "radgate.models.package",
    "PackageIntegrityError": "radgate.models.package",
    "sha256_hex": "radgate.models.package",
    "write_package": "radgate.models.package",
    "InstalledModel": "radgate.models.registry",
    "RegistryError": "radgate.models.registry",
    "VerifyReport": "radgate.models.registry",
    "add_model": "radgate.models.registry",
    "ensure_default_models": "radgate.models.registry",
    "get_model": "radgate.models.registry",
    "list_models": "radgate.models.registry",
    "open_model": "radgate.models.registry",
    "remove_model": "radgate.models.registry",
    "verify_model": "radgate.models.registry",
}


__getattr__ = lazy_exports(__name__, _HOMES)
