"""Signing in a build's configuration (pure): the [output] keys, the flags over them, and what is
refused before anything is built."""

from __future__ import annotations

import pytest

from chrootforge.build.distribution import DistOptions, Distribution, _sign_options
from chrootforge.errors import UsageError
from chrootforge.registry.signing.signoptions import SignOptions
from chrootforge.spec.graph import load_project


def _project(ns, output: str):
    ns.write(
        "chrootforge.toml",
        f'name = "t"\n[stage3]\npath = "stage3.tar.zst"\n[tree]\npath = "repo"\n[output]\n{output}',
    )
    ns.image("base", 'parent = "scratch"\n')
    return load_project(ns.root)[0]


def test_output_keys_and_flags_over_them(ns, monkeypatch):
    monkeypatch.setenv("KEYS", str(ns.root / "keys"))
    project = _project(
        ns,
        'sign_by = "0123456789ABCDEF0123456789ABCDEF01234567"\n'
        'sign_by_sigstore_private_key = "${KEYS}/cosign.key"\n'
        'sign_passphrase_file = "pass"\n',
    )
    spec = project.namespace
    assert spec.sign_by == "0123456789ABCDEF0123456789ABCDEF01234567"
    assert spec.sign_by_sigstore_private_key == ns.root / "keys" / "cosign.key"
    assert spec.sign_passphrase_file == ns.root / "pass"  # relative to chrootforge.toml
    merged = _sign_options(spec, SignOptions(sigstore_key="/flag.key", registries_d="/rd"))
    assert merged == SignOptions(
        sign_by="0123456789ABCDEF0123456789ABCDEF01234567",
        sigstore_key="/flag.key",
        passphrase_file=str(ns.root / "pass"),
        registries_d="/rd",
    )


def test_a_fingerprint_that_is_not_one_is_a_spec_error(ns):
    with pytest.raises(UsageError, match=r"chrootforge.toml:\d+.*not an OpenPGP fingerprint"):
        _project(ns, 'sign_by = "alice@example.com"\n')


def test_signing_flags_without_a_push_are_refused_before_anything(ns, tmp_path):
    project = _project(ns, "")
    with pytest.raises(UsageError, match="sign what the build pushes") as err:
        Distribution.prepare(
            DistOptions(signing=SignOptions(sigstore_key="/k")), project, tmp_path / "layout"
        )
    assert "--push" in err.value.hint
    # the [output] keys alone are read by builds that push, and ignored by the others
    quiet = _project(ns, 'sign_by_sigstore_private_key = "/nonexistent.key"\n')
    assert Distribution.prepare(DistOptions(), quiet, tmp_path / "layout") is None


def test_a_wrong_key_fails_the_build_before_it_starts(ns, tmp_path):
    project = _project(ns, 'registry = "docker://registry.example.com/t"\n')
    with pytest.raises(UsageError, match="does not exist"):
        Distribution.prepare(
            DistOptions(push=True, signing=SignOptions(sigstore_key=str(tmp_path / "missing.key"))),
            project,
            tmp_path / "layout",
        )
