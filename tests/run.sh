#!/usr/bin/env bash
# The README's test command: provisions what the suite needs beyond the Python packages, then runs pytest.
#   - an OpenSSH server for the SSH-remote round trip (tests/test_remotes.py): Debian's openssh-server,
#     installed with apt-get when sshd is missing (as root, or through sudo);
#   - a git identity for the commits DVC makes in temporary clones (a neutral one when none is configured).
# Arguments are passed to pytest, e.g. `bash tests/run.sh -m "not e2e"` for the unit tests only.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "tests/run.sh: installing openssh-server (Debian) for the SSH remote test" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        openssh-server openssh-client
fi

if [ -z "$(git config user.name || true)" ]; then
    export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-tests} GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-tests}
fi
if [ -z "$(git config user.email || true)" ]; then
    export GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-tests@example.invalid}
    export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-tests@example.invalid}
fi

exec python3 -m pytest -q "$@"
