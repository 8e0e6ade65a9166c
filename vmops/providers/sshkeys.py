"""The SSH public key text for clouds that take the key itself (Crusoe and Nebius cloud dialects).

``VMOPS_<P>_SSH_PUBLIC_KEY_FILE`` (``ssh_public_key_file`` in config.toml), else ``~/.ssh/id_ed25519.pub``, then
``~/.ssh/id_rsa.pub``. A missing or unreadable key is a configuration error raised before anything is sent.
"""

from __future__ import annotations

from pathlib import Path

from vmops.config import ProviderSettings
from vmops.errors import InvalidArgument

DEFAULT_FILES = ("~/.ssh/id_ed25519.pub", "~/.ssh/id_rsa.pub")


def public_key_text(settings: ProviderSettings) -> str:
    var = f"VMOPS_{settings.name.upper()}_SSH_PUBLIC_KEY_FILE"
    candidates = [settings.ssh_public_key_file] if settings.ssh_public_key_file else list(DEFAULT_FILES)
    for name in candidates:
        path = Path(name).expanduser()
        try:
            text = path.read_text().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.startswith(("ssh-", "ecdsa-", "sk-")) and "PRIVATE KEY" not in text:
            return text.splitlines()[0]
        raise InvalidArgument(f"{path} does not hold an OpenSSH public key", provider=settings.name,
                              hint=f"Point {var} at a .pub file")
    raise InvalidArgument(f"no SSH public key found ({', '.join(candidates)})", provider=settings.name,
                          hint=f"Create one with ssh-keygen, or set {var} to a .pub file")
