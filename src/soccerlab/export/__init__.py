"""Export a soccer run as an SAI submission folder (``build``), and submit one (``submit``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from soccerlab.export.build import FORMATS, ExportCheckFailed, ExportResult, export_run


def sai_versions() -> dict[str, str]:
    """Versions of the packages the SAI side uses (``missing`` where not installed)."""
    out = {}
    for name in ("sai-rl", "onnxruntime", "onnx"):
        try:
            out[name.replace("-", "_")] = version(name)
        except PackageNotFoundError:
            out[name.replace("-", "_")] = "missing"
    return out


__all__ = ["FORMATS", "ExportCheckFailed", "ExportResult", "export_run", "sai_versions"]
