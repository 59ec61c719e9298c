#!/bin/sh
# Enclume's session service, the lab's busybox port of enclume_session_service.py (same
# protocol, options and messages; docs/session-service.md). For small OSes without Python:
# it needs only a POSIX sh and busybox's (or GNU) wget, sed, grep, date, mount, findfs,
# timeout and sleep. The lab's test images (ramdisk/testimages) run it from their /init.
#
# Settings: --config FILE if it exists, else enclume/session-service.json of the config drive
# (--config-drive DEVICE, default the file system labelled config-2, mounted read-only for a
# moment), then kept in FILE (mode 0600). Then heartbeats: POST
# <api_url>/enclume/v1/session-service/<node>, "Authorization: Bearer <token>", body
# {"booted_at": ..., "wait_s": ...}; the answer's "command" (power-off, reboot,
# reboot-to-network) is run with --poweroff-command / --reboot-command (default: busybox's
# `poweroff -f` / `reboot -f`, for an OS whose init is a script); reboot-to-network first runs
# `efibootmgr --bootnext` for a network boot entry when efibootmgr is there.
#
# Unlike the Python service, the token is on wget's command line while a heartbeat is held
# (busybox wget takes headers only as arguments): any local user who can list processes can
# read it. Fine for the lab's single-user test OS; elsewhere prefer the Python service.

config=/var/lib/enclume/session-service.json
config_drive=LABEL=config-2
wait_s=20
retry_s=30
poweroff_command="poweroff -f"
reboot_command="reboot -f"
efibootmgr=efibootmgr
once=
HTTP_MARGIN_S=15
FILE_ON_DRIVE=enclume/session-service.json

log() { echo "enclume-session-service: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --config) config=$2; shift ;;
        --config-drive) config_drive=$2; shift ;;
        --wait-s) wait_s=$2; shift ;;
        --retry-s) retry_s=$2; shift ;;
        --poweroff-command) poweroff_command=$2; shift ;;
        --reboot-command) reboot_command=$2; shift ;;
        --efibootmgr) efibootmgr=$2; shift ;;
        --once) once=yes ;;
        *) log "ERROR unknown option $1"; exit 2 ;;
    esac
    shift
done
case "$wait_s" in ''|*[!0-9]*) log "ERROR --wait-s takes whole seconds"; exit 2 ;; esac

# The value of a string field of a one-line JSON object (what Enclume writes).
field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" | head -n 1; }

load_config() {
    if [ ! -f "$config" ]; then
        device=$config_drive
        case "$device" in LABEL=*|UUID=*) device=$(findfs "$device") || return 1 ;; esac
        mountpoint=$(mktemp -d) || return 1
        mount -o ro "$device" "$mountpoint" || { rmdir "$mountpoint"; return 1; }
        mkdir -p "$(dirname "$config")"
        (umask 077 && cp "$mountpoint/$FILE_ON_DRIVE" "$config")
        copied=$?
        umount "$mountpoint"
        rmdir "$mountpoint"
        [ "$copied" -eq 0 ] || return 1
    fi
    api_url=$(field api_url < "$config")
    node=$(field node < "$config")
    token=$(field token < "$config")
    # What goes into a URL or a header: nothing but the characters Enclume writes.
    case "$api_url" in http://*|https://*) ;; *) api_url= ;; esac
    case "$api_url$node$token" in *[!A-Za-z0-9._:/%-]*) api_url= ;; esac
    if [ -z "$api_url" ] || [ -z "$node" ] || [ -z "$token" ]; then
        log "ERROR cannot start: the session service settings lack api_url, node or token"
        return 1
    fi
}

boot_time() {  # ISO 8601 UTC, from btime of /proc/stat; JSON null if unknown
    btime=$(sed -n 's/^btime \([0-9]*\)$/\1/p' /proc/stat)
    moment=$(date -u -d "@$btime" +%Y-%m-%dT%H:%M:%S+00:00 2>/dev/null)
    if [ -n "$btime" ] && [ -n "$moment" ]; then echo "\"$moment\""; else echo null; fi
}

# One heartbeat. Sets $command (empty: none); status 0, 1 (failed) or 2 (token refused).
heartbeat() {
    command=
    errors=$(mktemp) || return 1
    answer=$(timeout $((wait_s + HTTP_MARGIN_S)) wget -q -O - \
        --header "Content-Type: application/json" --header "Authorization: Bearer $token" \
        --post-data "{\"booted_at\": $booted_at, \"wait_s\": $wait_s}" \
        "${api_url%/}/enclume/v1/session-service/$node" 2>"$errors")
    status=$?
    problem=$(head -c 300 "$errors")
    rm -f "$errors"
    if [ "$status" -ne 0 ]; then
        case "$problem" in *" 401 "*|*"401 Unauthorized"*) return 2 ;; esac
        failure=${problem:-wget exited with $status}
        return 1
    fi
    command=$(echo "$answer" | field command)
    case "$command" in power-off|reboot|reboot-to-network) ;; *) command= ;; esac
}

set_next_boot_to_network() {
    if ! command -v "$efibootmgr" >/dev/null 2>&1; then
        log "WARNING no $efibootmgr here: the firmware's boot order decides what boots next"
        return 1
    fi
    entry=$("$efibootmgr" | sed -n 's/^[[:space:]]*Boot\([0-9A-Fa-f]\{4\}\)\*\{0,1\}[[:space:]]\{1,\}\(.*\)$/\1 \2/p' \
        | grep -iE '^.... .*(pxe|ipv4|ipv6|network|nic|lan)' | head -n 1 | cut -c1-4)
    if [ -z "$entry" ]; then
        log "WARNING no network boot entry in the firmware: its boot order decides"
        return 1
    fi
    if ! "$efibootmgr" --bootnext "$entry" >/dev/null; then
        log "WARNING efibootmgr --bootnext $entry failed"
        return 1
    fi
    log "INFO next boot: entry $entry (network)"
}

run_command() {  # status 0 when the command ran successfully
    if [ "$1" = reboot-to-network ]; then set_next_boot_to_network; fi
    if [ "$1" = power-off ]; then argv=$poweroff_command; else argv=$reboot_command; fi
    log "INFO running $1: $argv"
    sync
    # shellcheck disable=SC2086 # the option is a command line, split into words
    $argv || { log "ERROR ${argv%% *} exited with $?"; return 1; }
}

load_config || exit 1
booted_at=$(boot_time)
log "INFO reporting node $node up to $api_url"
while :; do
    heartbeat
    case $? in
        2) log "ERROR the API refused this deploy's token (wrong, or replaced by a later" \
               "deploy); trying again in $retry_s s"
           sleep "$retry_s"; continue ;;
        1) log "WARNING heartbeat failed: $failure; trying again in $retry_s s"
           sleep "$retry_s"; continue ;;
    esac
    if [ -n "$command" ] && run_command "$command"; then
        exit 0  # the OS goes down: no more heartbeats
    fi
    [ -z "$once" ] || exit 0
done
