import pytest

from sparsity_core import artifacts
from sparsity_core.assets import manifest


def test_record_and_verify_roundtrip(tmp_path):
    m = tmp_path / "MANIFEST"
    f = tmp_path / "a.txt"
    f.write_text("hello")
    manifest.record([f], "python -m x build a", path=m)
    assert artifacts.read_manifest(m)["a.txt"].command == "python -m x build a"
    assert artifacts.verify(f, path=m) == f
    f.write_text("hellO")
    with pytest.raises(artifacts.ChecksumError, match="rebuild it with `python -m x build a`"):
        artifacts.verify(f, path=m)
    f.unlink()
    with pytest.raises(FileNotFoundError, match="rebuild"):
        artifacts.verify(f, path=m)


def test_unlisted_file_is_an_error(tmp_path):
    f = tmp_path / "b.txt"
    f.write_text("x")
    with pytest.raises(artifacts.ChecksumError, match="not listed"):
        artifacts.verify(f, path=tmp_path / "MANIFEST")


def test_every_committed_asset_matches_the_manifest():
    entries = artifacts.read_manifest()
    for rel in entries:
        artifacts.verify(artifacts.manifest_path().parent / rel)
