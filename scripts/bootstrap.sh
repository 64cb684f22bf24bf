#!/usr/bin/env bash
# Install what tunbench needs, idempotently: Debian iperf3/libiperf0/socat/sockperf/iperf/perf, the VPN
# daemons of the peer rows, openssh-server (tunbench fleet's tests), a venv with the package, its test
# dependencies and the fleet extra (ansible-core, ansible-runner). Run by bench.sh and test.sh (and on its own).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

need_apt=()
command -v iperf3 >/dev/null 2>&1 || need_apt+=(iperf3)
ldconfig -p 2>/dev/null | grep -q 'libiperf\.so\.0' || need_apt+=(libiperf0)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
# The load generators of --workload rr (sockperf) and crr (iperf 2).
command -v sockperf >/dev/null 2>&1 || need_apt+=(sockperf)
command -v iperf >/dev/null 2>&1 || need_apt+=(iperf)
# perf records the flamegraphs of native (external) forwarders.
command -v perf >/dev/null 2>&1 || need_apt+=(linux-perf)
# tunbench fleet reaches hosts over SSH; its tests run an sshd per fake host, reached through
# socat inside the host's namespace.
[[ -x /usr/sbin/sshd ]] || command -v sshd >/dev/null 2>&1 || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# The native offload engine (tunio/native/*.c) needs a C compiler and the Python headers.
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
python3 - <<'PY' >/dev/null 2>&1 || need_apt+=(python3-dev)
import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
PY
# The uring-* variants' rings (tunio/uring/*.c) link liburing.
[[ -f /usr/include/liburing.h ]] || need_apt+=(liburing-dev)
# The HTML report test renders the page in headless Chromium (test.sh asks for it).
if [[ ${TB_WITH_BROWSER:-0} == 1 ]]; then
    command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
# Another apt run (an unattended upgrade, a second bootstrap) holds dpkg's lock: wait for
# it instead of failing at once.
APT=(apt-get -o DPkg::Lock::Timeout=600)
if ((${#need_apt[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "bootstrap: need root to install Debian packages: ${need_apt[*]}" >&2
        exit 2
    fi
    echo "bootstrap: installing ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${APT[@]}" update -qq
    apt_updated=1
    "${APT[@]}" install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The peer rows' daemons (tunbench/peers/): program -> Debian package. Each one is optional:
# one that cannot be installed fails only its own row ("install the Debian package X").
peer_apt=()
for pair in openvpn:openvpn openssl:openssl wireguard-go:wireguard-go wg:wireguard-tools \
    tincd:tinc fastd:fastd quicktun:quicktun nebula:nebula nebula-cert:nebula \
    yggdrasil:yggdrasil vtund:vtun ip:iproute2 gvpe:gvpe gvpectrl:gvpe; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || peer_apt+=("${pair#*:}")
done
if ((${#peer_apt[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "bootstrap: not root, so the peer rows of ${peer_apt[*]} will fail" >&2
    else
        export DEBIAN_FRONTEND=noninteractive
        [[ ${apt_updated:-0} == 1 ]] || "${APT[@]}" update -qq || true
        for pkg in $(printf '%s\n' "${peer_apt[@]}" | sort -u); do
            echo "bootstrap: installing $pkg (a peer row)" >&2
            "${APT[@]}" install -y -qq --no-install-recommends "$pkg" >/dev/null ||
                echo "bootstrap: could not install $pkg; its peer row will fail" >&2
        done
    fi
fi

stamp="$VENV/.tunbench-installed"
# Reinstall (which rebuilds the native engine) when the packaging or the C sources change.
want="$(cd "$ROOT" && cat pyproject.toml setup.py tunio/native/* tunio/uring/* | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
native_ok() { (cd / && "$VENV/bin/python" -c "import tunio.$1") >/dev/null 2>&1; }
# (A failed native build is not retried on every run: delete the stamp to force one.)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "bootstrap: installing Python dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e "$ROOT[test,fleet]"
    echo "$want" > "$stamp"
    # The extension is optional (setup.py): say so when it did not build, but go on.
    native_ok _native || echo "bootstrap: the native offload engine did not build; --engine native" \
        "is unavailable (the pure engine works)" >&2
    native_ok _uring || echo "bootstrap: the io_uring rings did not build (liburing-dev?);" \
        "the uring-* variants are unavailable" >&2
fi
# The C reference forwarder of the uring rows (tools/cfwd.c), rebuilt when its source changes:
# run it as the external spec "$VENV/bin/tb-cfwd {iface1} {iface2} {stats}".
if [[ ! -x "$VENV/bin/tb-cfwd" || "$ROOT/tools/cfwd.c" -nt "$VENV/bin/tb-cfwd" ]]; then
    gcc -O2 -Wall -Wextra -pthread -o "$VENV/bin/tb-cfwd" "$ROOT/tools/cfwd.c" ||
        echo "bootstrap: tools/cfwd.c did not build; the tb-cfwd reference row is unavailable" >&2
fi
