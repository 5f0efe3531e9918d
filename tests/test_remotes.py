"""Sharing and reproducing artifacts: determinism across clones, and push/pull through real SSH and S3 servers.

The artifacts of ``pretrain@a`` and its upstream (``tokenizer``, ``prepare``, ``base``: every kind of output,
data, tokenizer and models, once) are built again from scratch in a separate copy of the repository with its
own DVC cache; they must be byte-identical to the session's golden run (tests/golden.py), lock hashes included
(same params + inputs -> same bytes on CPU). A clone of the golden run is then pushed to an SSH remote (Debian
``openssh-server`` started on 127.0.0.1) and an S3 remote (moto's S3-compatible server on 127.0.0.1); fresh git
clones pull from each and must get byte-identical artifacts with ``dvc status -c`` in sync. Missing server
software fails, it does not skip. Only files the project writes are compared, never DVC's ``.gitignore`` files
(their line order is the order DVC happened to run independent stages).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from golden import ENV, lock_entries, ran, sh, tiny_copy, tree_hashes, work_copy

pytestmark = pytest.mark.e2e

TARGET = "pretrain@a"  # prepare -> base -> pretrain@a: every kind of output (data, tokenizer, models) once
OUTPUTS = ("data", "models")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@pytest.fixture(scope="module")
def repo(golden_repo, tmp_path_factory) -> Path:
    """A clone of the golden run with ``TARGET`` and its upstream checked out (its remotes are added here)."""
    path = work_copy(golden_repo, tmp_path_factory.mktemp("remotes") / "repo", checkout=False)
    sh(path, "dvc", "checkout", "--quiet", "--with-deps", TARGET)
    return path


def artifact_locks(repo: Path, stages: set[str]) -> dict:
    """``dvc.lock``'s commands, deps, params and the hashes of the outputs under :data:`OUTPUTS` of ``stages``."""
    return {name: {**entry, "outs": [o for o in entry.get("outs", []) if o["path"].startswith(OUTPUTS)]}
            for name, entry in lock_entries(repo, stages).items()}


def test_two_clones_give_byte_identical_artifacts(golden_repo, tmp_path):
    other = tiny_copy(tmp_path / "other", cache=None)  # its own cache: everything computed again
    out = sh(other, "dvc", "repro", TARGET)
    assert ran(out) == {"tokenizer", "prepare@corpus", "base", TARGET}
    built = tree_hashes(other, *OUTPUTS)
    assert len(built) >= 10 and any(name.endswith("model.safetensors") for name in built)
    golden = tree_hashes(golden_repo, *OUTPUTS)
    assert built == {name: golden.get(name) for name in built}
    assert artifact_locks(other, ran(out)) == artifact_locks(golden_repo, ran(out))
    # Training again in the same clone (a forced rerun of the one training stage) gives the same bytes too,
    # so dvc.lock does not change.
    sh(other, "git", "add", "-A")
    sh(other, "git", "commit", "-qm", "run")
    sh(other, "dvc", "repro", "-f", "-s", TARGET)
    assert tree_hashes(other, *OUTPUTS) == built
    assert sh(other, "git", "status", "--porcelain", "dvc.lock").strip() == ""


def roundtrip(repo: Path, tmp_path: Path, name: str, url: str, local: dict[str, str], env: dict) -> None:
    """Push ``repo`` to remote ``name``, pull it into a fresh clone, check bytes and ``dvc status -c``.

    ``local`` options (credentials, key files) go to ``.dvc/config.local`` of both checkouts, never to git.
    """
    sh(repo, "dvc", "remote", "add", name, url, env=env)
    for key, value in local.items():
        sh(repo, "dvc", "remote", "modify", "--local", name, key, value, env=env)
    sh(repo, "git", "check-ignore", "-q", ".dvc/config.local")  # credentials stay out of git
    sh(repo, "git", "add", ".dvc/config")
    sh(repo, "git", "commit", "-qm", f"remote {name}")
    assert "Everything is up to date" not in sh(repo, "dvc", "push", "-r", name, "--with-deps", TARGET, env=env)

    clone = tmp_path / f"clone-{name}"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not list(clone.glob("models/**/*.safetensors")) and not (clone / ".dvc" / "cache").exists()
    for key, value in local.items():
        sh(clone, "dvc", "remote", "modify", "--local", name, key, value, env=env)
    sh(clone, "dvc", "pull", "-r", name, "--with-deps", TARGET, env=env)
    assert tree_hashes(clone, *OUTPUTS) == tree_hashes(repo, *OUTPUTS)
    assert "in sync" in sh(clone, "dvc", "status", "-c", "-r", name, "--with-deps", TARGET, env=env)
    assert "up to date" in sh(clone, "dvc", "status", "--with-deps", TARGET)


@pytest.fixture
def sshd(tmp_path):
    """An OpenSSH server on a free 127.0.0.1 port accepting one generated key; yields (port, key, home)."""
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    assert os.path.exists(binary), "sshd not found: install Debian openssh-server (.ci/run does)"
    d = tmp_path / "ssh"
    d.mkdir()
    sh(d, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key"))
    sh(d, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client_key"))
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    port = free_port()
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {d / 'host_key'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
        "Subsystem sftp internal-sftp\n"
    )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation dir, absent where sshd never ran
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, proc)
        # A private HOME whose known_hosts trusts exactly this server's host key.
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True)
        host_pub = (d / "host_key.pub").read_text().split()
        (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        yield port, d / "client_key", home
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_ssh_remote_roundtrip(repo, tmp_path, sshd):
    port, key, home = sshd
    store = tmp_path / "ssh-store"
    store.mkdir()
    env = {**ENV, "HOME": str(home)}
    roundtrip(repo, tmp_path, "ssh", f"ssh://{getpass.getuser()}@127.0.0.1:{port}{store}",
              {"keyfile": str(key)}, env)
    assert any(store.rglob("*")), "nothing arrived on the SSH server"


@pytest.fixture
def s3_server():
    """moto's S3-compatible server on a free 127.0.0.1 port with one bucket; yields its endpoint URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test").create_bucket(Bucket="artifacts")
        yield url
    finally:
        server.stop()


def test_s3_remote_roundtrip(repo, tmp_path, s3_server):
    import boto3

    env = {k: v for k, v in ENV.items() if not k.startswith("AWS_")}  # credentials only from config.local
    roundtrip(repo, tmp_path, "s3", "s3://artifacts/bert-compress",
              {"endpointurl": s3_server, "access_key_id": "test", "secret_access_key": "test",
               "region": "us-east-1"}, env)
    listed = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test").list_objects_v2(Bucket="artifacts")
    assert listed.get("KeyCount", 0) > 0, "nothing arrived on the S3 server"
