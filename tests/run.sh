#!/usr/bin/env bash
# The README's test command: provisions what the suite needs beyond the Python packages, then runs pytest.
#   - an OpenSSH server for the SSH-remote round trip (tests/test_remotes.py): Debian's openssh-server,
#     installed with apt-get when sshd is missing (as root, or through sudo);
#   - WordNet 3.0 for METEOR (tests/test_text_metrics.py): Debian's wordnet-base, installed the same way when
#     /usr/share/wordnet is missing (and WNSEARCHDIR names no other WordNet directory);
#   - a git identity for the commits DVC makes in temporary clones (a neutral one when none is configured).
# Arguments are passed to pytest, e.g. `bash tests/run.sh -m "not slow"` for the inner loop (a few minutes) or
# `bash tests/run.sh -m "not e2e"` for the unit tests only. The 15 slowest tests are listed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then
    echo "tests/run.sh: installing openssh-server (Debian) for the SSH remote test" >&2
    packages+=(openssh-server openssh-client)
fi
if [ ! -f "${WNSEARCHDIR:-/usr/share/wordnet}/data.noun" ]; then
    echo "tests/run.sh: installing wordnet-base (Debian) for the METEOR tests" >&2
    packages+=(wordnet-base)
fi
if [ ${#packages[@]} -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

if [ -z "$(git config user.name || true)" ]; then
    export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-tests} GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-tests}
fi
if [ -z "$(git config user.email || true)" ]; then
    export GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-tests@example.invalid}
    export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-tests@example.invalid}
fi

# pytest-xdist workers: one more than the cores (3 on 2 cores; at most 5), since a worker often waits for a stage
# process it started; modules kept whole on one worker and handed out in the order tests/conftest.py sets.
# `-n 0` after it runs everything in this process.
workers=$(python3 -c "import os; print(min(5, len(os.sched_getaffinity(0)) + 1))")
exec python3 -m pytest -q --durations=15 -n "$workers" --dist loadscope --no-loadscope-reorder "$@"
