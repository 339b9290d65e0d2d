"""``soccerlab submit DIR --name NAME``: send an exported folder to the SAI competition (sai-rl).

Needs the optional extra ``soccerlab[sai]`` (sai-rl), an API key (``SAI_API_KEY`` or
``sai login``) and the network; without any of them it says so in one line (UserError).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from soccerlab.errors import UserError

DEFAULT_COMPETITION = "booster-soccer-showdown"
DEFAULT_API = "https://api.competesai.com"


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """A quick TCP check so an offline machine fails in seconds (skipped behind a proxy)."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return True
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "", parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def read_export(folder: str | Path) -> dict[str, Any]:
    """The manifest of an export folder, checking that its files are there."""
    folder = Path(folder)
    manifest_file = folder / "manifest.json"
    if not manifest_file.is_file():
        raise UserError(f"{folder} is not a soccerlab export (no manifest.json); "
                        "make one with: soccerlab export RUN")
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"corrupt {manifest_file}: {exc}") from None
    for key in ("model", "preprocessor", "action_function"):
        if not (folder / str(manifest.get(key, ""))).is_file():
            raise UserError(f"{folder} lacks its {key} file ({manifest.get(key)})")
    return manifest


def submit(folder: str | Path, name: str, competition: str = DEFAULT_COMPETITION) -> Any:
    """Submit the export in ``folder`` under ``name``; returns sai-rl's answer."""
    folder = Path(folder)
    manifest = read_export(folder)
    try:
        from sai_rl import SAIClient
    except ImportError:
        raise UserError("submit needs sai-rl: pip install 'soccerlab[sai]'") from None
    from sai_rl.utils import config as sai_config

    key = os.environ.get("SAI_API_KEY") or sai_config.api_token
    if not key:
        raise UserError("no SAI API key: run 'sai login' or set SAI_API_KEY")
    api = getattr(sai_config, "api_url", None) or DEFAULT_API
    if not _reachable(api):
        raise UserError(f"cannot reach the SAI API ({urlparse(api).hostname}): offline?")
    model_type = "onnx" if manifest["format"] == "onnx" else "pytorch"
    try:
        client = SAIClient(comp_id=competition, api_key=key)
        return client.submit(name, str(folder / manifest["model"]), model_type=model_type,
                             preprocessor_class=str(folder / manifest["preprocessor"]),
                             action_function=str(folder / manifest["action_function"]))
    except Exception as exc:  # noqa: BLE001 - sai-rl raises many types (network, auth, API)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"SAI submission failed: {type(exc).__name__}: {first}") from None
