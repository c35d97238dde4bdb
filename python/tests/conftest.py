"""Shared fixtures: the repository's paths, a scratch folder with its own ledger, and the
privsynth binary for the CLI parity tests."""

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADULT = ROOT / "data" / "adult" / "adult.csv"
ADULT_TEST = ROOT / "data" / "adult" / "adult_test.csv"
ADULT_SCHEMA = ROOT / "schemas" / "adult.yaml"


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A working folder of its own: the default ledger (.privsynth/ledger.jsonl) lands here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PRIVSYNTH_LEDGER", raising=False)
    return tmp_path


def ledger_entries(path):
    path = pathlib.Path(path)
    if not path.exists():
        return []
    import json

    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


@pytest.fixture(scope="session")
def privsynth_bin():
    """The CLI binary: $PRIVSYNTH_BIN (set by .ci/run), else the workspace's debug build, built
    if missing."""
    env = os.environ.get("PRIVSYNTH_BIN")
    if env:
        assert pathlib.Path(env).is_file(), "PRIVSYNTH_BIN=%s does not exist" % env
        return env
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "debug" / "privsynth"
    if not binary.is_file():
        cargo = shutil.which("cargo")
        assert cargo, "no privsynth binary and no cargo to build it"
        subprocess.run([cargo, "build", "-q", "--bin", "privsynth"], cwd=ROOT, check=True)
    return str(binary)
