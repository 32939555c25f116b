#!/usr/bin/env bash
# Install the Debian packages the portal and its tests need, when they are missing.
#   pango/harfbuzz: WeasyPrint renders PDFs with them; poppler-utils: pdftotext in tests;
#   chromium: the browser tests (Playwright drives /usr/bin/chromium; never its own download);
#   fonts-dejavu-core: a font for PDFs on a bare machine; wrk: the HTTP load of bench/;
#   postgresql-client: pg_dump/pg_restore for `flask backup`/`restore` and their drill test.
# Usage: scripts/system-deps.sh [--browser] [--bench]
set -euo pipefail
want=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b fonts-dejavu-core)
for flag in "$@"; do
  case "$flag" in
    --browser) want+=(chromium poppler-utils postgresql-client) ;;
    --bench) want+=(wrk) ;;
    *) echo "usage: $0 [--browser] [--bench]" >&2; exit 2 ;;
  esac
done
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "Installing Debian packages: ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "Please install as root: apt-get install ${missing[*]}" >&2; exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
