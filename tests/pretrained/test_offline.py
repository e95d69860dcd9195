"""offline_hub: offline inside, the environment exactly restored after (also on error)."""
import os
import socket
import subprocess
import sys

import pytest

from sparsity_core.pretrained.offline import CACHE_ENV, OFFLINE_ENV, offline_hub, user_cache_dir

from . import no_network


def test_sets_variables_inside_and_restores_them(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")           # set before: value comes back
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)   # unset before: unset after
    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY", raising=False)
    before = dict(os.environ)
    with offline_hub():
        for key, value in OFFLINE_ENV.items():
            assert os.environ[key] == value
    assert dict(os.environ) == before
    assert os.environ["HF_HUB_OFFLINE"] == "0"
    assert "TRANSFORMERS_OFFLINE" not in os.environ


def test_restores_after_an_exception(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    before = dict(os.environ)
    with pytest.raises(RuntimeError, match="boom"):
        with offline_hub():
            raise RuntimeError("boom")
    assert dict(os.environ) == before


def test_patches_huggingface_hub_constants_read_at_import():
    constants = pytest.importorskip("huggingface_hub.constants")
    before = (constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_TELEMETRY)
    with offline_hub():
        assert constants.HF_HUB_OFFLINE is True
        assert constants.HF_HUB_DISABLE_TELEMETRY is True
        assert constants.is_offline_mode()
    assert (constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_TELEMETRY) == before


def test_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert user_cache_dir() == tmp_path.resolve()
    monkeypatch.delenv(CACHE_ENV)
    assert user_cache_dir().parts[-2:] == (".cache", "sparsity_core")


def test_no_network_helper_blocks_and_records():
    with no_network() as attempts:
        with pytest.raises(OSError, match="network disabled"):
            socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert attempts


def test_first_import_inside_the_block_does_not_stay_offline(tmp_path):
    """huggingface_hub freezes its constants at first import: that import must not happen inside."""
    pytest.importorskip("huggingface_hub")
    code = ("from sparsity_core.pretrained.offline import offline_hub\n"
            "with offline_hub():\n"
            "    import huggingface_hub.constants as c\n"
            "    inside = c.HF_HUB_OFFLINE\n"
            "print(inside, c.HF_HUB_OFFLINE)\n")
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.split() == ["True", "False"]
