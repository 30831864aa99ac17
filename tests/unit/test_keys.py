import shutil
import stat
from pathlib import Path

import paramiko
import pytest

from lab.keys import lab_keys


@pytest.mark.skipif(shutil.which("dropbearkey") is None, reason="dropbearkey not installed")
def test_keys_generated_once_with_0600(tmp_cache: Path) -> None:
    keys = lab_keys()
    for path in (keys.client_key, keys.host_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_cache / "keys").stat().st_mode) == 0o700
    assert keys.client_pub.startswith("ssh-ed25519 ")
    assert keys.host_pub.startswith("ssh-ed25519 ")
    paramiko.Ed25519Key.from_private_key_file(str(keys.client_key))
    again = lab_keys()
    assert again == keys  # not regenerated


@pytest.mark.skipif(shutil.which("dropbearkey") is None, reason="dropbearkey not installed")
def test_loose_permissions_are_refused(tmp_cache: Path) -> None:
    from lab.errors import LabError

    keys = lab_keys()
    keys.client_key.chmod(0o644)
    with pytest.raises(LabError, match="must be 0600"):
        lab_keys()
