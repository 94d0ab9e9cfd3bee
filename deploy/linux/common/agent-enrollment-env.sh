# Shell fragment (POSIX sh) that deploy/linux/build-packages.sh inlines into the agent's
# .deb postinst and .rpm %post: enrollment values in the installer's environment
# (FIRSTLINE_COLLECTOR_URL, FIRSTLINE_ENROLL_TOKEN, FIRSTLINE_CA_FILE, e.g.
# `env FIRSTLINE_...=... apt-get install ./firstline-agent.deb`) are written to
# /etc/firstline/agent.env (0600), which firstline-agent.service reads as its EnvironmentFile;
# the agent enrolls by itself at start while it has no identity. A value not given keeps the
# one already in the file; nothing given leaves the file as it is. The CA file is copied to
# /etc/firstline/collector-ca.crt, since the path given may be gone (or in a private /tmp)
# when the agent reads it. Bad values are reported and ignored: the install goes on and the
# service runs without them. Licensed under the Apache License, Version 2.0.

firstline_write_enrollment_env() {
    env_file=/etc/firstline/agent.env
    ca_copy=/etc/firstline/collector-ca.crt
    if [ -z "${FIRSTLINE_COLLECTOR_URL:-}${FIRSTLINE_ENROLL_TOKEN:-}${FIRSTLINE_CA_FILE:-}" ]; then
        return 0
    fi
    for value in "${FIRSTLINE_COLLECTOR_URL:-}" "${FIRSTLINE_ENROLL_TOKEN:-}" "${FIRSTLINE_CA_FILE:-}"; do
        case "$value" in
            *'
'* | *'"'* | *\\* | *'$'* | *'`'*)
                echo "firstline-agent: FIRSTLINE_* values must not contain newlines, quotes, backslashes, \$ or \`; not written to $env_file" >&2
                return 0
                ;;
        esac
    done
    case "${FIRSTLINE_COLLECTOR_URL:-https://}" in
        https://*) ;;
        *)
            echo "firstline-agent: FIRSTLINE_COLLECTOR_URL must start with https:// (got $FIRSTLINE_COLLECTOR_URL); not written to $env_file" >&2
            return 0
            ;;
    esac
    ca_value=""
    if [ -n "${FIRSTLINE_CA_FILE:-}" ]; then
        if ! grep -q -- '-----BEGIN CERTIFICATE-----' "$FIRSTLINE_CA_FILE" 2>/dev/null; then
            echo "firstline-agent: FIRSTLINE_CA_FILE=$FIRSTLINE_CA_FILE is not a readable PEM certificate; not written to $env_file" >&2
            return 0
        fi
        if [ "$(readlink -f "$FIRSTLINE_CA_FILE")" != "$ca_copy" ]; then
            (umask 022 && cat "$FIRSTLINE_CA_FILE" >"$ca_copy")
        fi
        ca_value="$ca_copy"
    fi
    # Composed first: the values not given come from the file being replaced.
    content="# Enrollment values for firstline-agent.service, written by the package from the
# installer's environment (docs/packaging.md). Used only while the agent has no identity."
    for key in FIRSTLINE_COLLECTOR_URL FIRSTLINE_ENROLL_TOKEN FIRSTLINE_CA_FILE; do
        case "$key" in
            FIRSTLINE_COLLECTOR_URL) value="${FIRSTLINE_COLLECTOR_URL:-}" ;;
            FIRSTLINE_ENROLL_TOKEN) value="${FIRSTLINE_ENROLL_TOKEN:-}" ;;
            *) value="$ca_value" ;;
        esac
        if [ -n "$value" ]; then
            line="$key=\"$value\""
        elif [ -f "$env_file" ]; then
            line="$(grep "^$key=" "$env_file" || true)"
        else
            line=""
        fi
        if [ -n "$line" ]; then
            content="$content
$line"
        fi
    done
    # Created 0600 here and only here; rewriting keeps that mode.
    (umask 077 && printf '%s\n' "$content" >"$env_file")
    echo "firstline-agent: enrollment values written to $env_file"
}
