#!/usr/bin/env bash
# Set up and run the whole test suite: installs the Debian packages of the real
# servers the tests start (mosquitto, influxd) when missing, a local .venv with
# the dev extras, then pytest.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
PACKAGES="mosquitto mosquitto-clients influxdb influxdb-client"
PACKAGES="$PACKAGES fonts-wqy-microhei poppler-utils"  # reports: a CJK TrueType font for the pdf; pdftoppm, pdftotext

missing=""
for bin in /usr/sbin/mosquitto /usr/bin/mosquitto_pub /usr/bin/influxd \
           /usr/bin/pdftoppm /usr/share/fonts/truetype/wqy/wqy-microhei.ttc; do
    [ -e "$bin" ] || missing=yes
done
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing Debian packages: $PACKAGES" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
exec .venv/bin/python -m pytest -q "$@"
