# Shared by scripts/stack and scripts/test: install what the project needs, idempotently,
# caching everything outside the repo (ETIQUETTE_CACHE_DIR, default ~/.cache/ari-etiquette).

CACHE="${ETIQUETTE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ari-etiquette}"
VENV="$CACHE/venv"
APT_PACKAGES=(debootstrap sip-tester redis-server festival festvox-us-slt-hts festvox-ru sox
              espeak-ng python3-venv python3-pip util-linux ca-certificates docker-compose chromium
              systemd)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "This needs root (apt-get, debootstrap and chroot for the sandbox Asterisk)." >&2
    echo "Run it as root, e.g. with sudo." >&2
    exit 1
  fi
}

ensure_apt_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_venv() {
  local stamp="$VENV/.installed" want
  want="$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtualenv in $VENV"
    mkdir -p "$CACHE"
    python3 -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing ari-etiquette and its test tools into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]"
    echo "$want" > "$stamp"
  fi
  # the venv is shared by every checkout: point its editable install at this one
  local here
  here="$(cd "$VENV" && "$VENV/bin/python" -c \
    'import ari_app, os; print(os.path.dirname(os.path.dirname(os.path.realpath(ari_app.__file__))))' \
    2>/dev/null || true)"
  if [ "$here" != "$(pwd -P)" ]; then
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e .
  fi
}

ensure_rootfs() {
  log "Asterisk 22 rootfs (debootstrap, built once, cached in $CACHE)"
  "$VENV/bin/ari-etiquette" sandbox build >/dev/null
}

ensure_test_prompts() {
  # Festival takes minutes from an empty cache: done here, not inside a test's time limit
  log "the prompt catalog as the tests say it (Festival; cached in the rootfs)"
  "$VENV/bin/python" - <<'PY'
import sys
sys.path.insert(0, "tests/integration")
from harness import render_test_prompts
from ari_app.sandbox.rootfs import ensure_rootfs
render_test_prompts(ensure_rootfs() / "usr/share/asterisk/etiquette-prompts")
PY
}
