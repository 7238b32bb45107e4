"""Whether W&B's server can be used now: an API key, and a server that answers within a second.

Standard library only, so that multirun_analysis (which never imports torch) asks the same
question as the runs' logger.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse


def has_api_key() -> bool:
    """A key in WANDB_API_KEY or in the netrc file that `wandb login` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def server_reachable(timeout: float = 1.0) -> bool:
    """Whether WANDB_BASE_URL (default api.wandb.ai) accepts a connection within ``timeout`` s."""
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False
