#!/usr/bin/env bash
# Single-node SLURM cluster for the workflow tests (Debian 12, slurm-wlm 22.05).
#
# Usage: tests/slurm/cluster.sh {start|stop|status}
#
#   start   install munge/slurmctld/slurmd/slurm-client with apt-get if missing,
#           write /etc/slurm/slurm.conf, start munged -> slurmctld -> slurmd and
#           wait until `sinfo` shows the node idle. Idempotent: daemons that
#           already answer are left alone and are not recorded as ours.
#   stop    stop exactly the daemons that `start` started (pid files under
#           $GNNFF_SLURM_SCRATCH/started/), in reverse order. Idempotent.
#   status  print which daemons answer, which ones are ours, and `sinfo`.
#
# Needs root (the daemons and the jobs run as root; there is no systemd here).
# Exit status: 0 ok, 2 the cluster cannot run on this machine (not root, no
# apt-get, install failed, foreign slurm.conf), 1 a daemon failed to come up.
# The last line on stderr is the reason; tests/slurm/conftest.py skips with it.
#
# Environment:
#   GNNFF_SLURM_SCRATCH   state, spool, logs, pid files (default /var/tmp/gnnff-slurm)
#   GNNFF_SLURM_TIMEOUT_S seconds to wait for the node to become idle (default 60)
#
# The config must live at /etc/slurm/slurm.conf: srun job steps started by the
# Snakemake executor plugin do not see a caller's SLURM_CONF.

set -euo pipefail

SCRATCH="${GNNFF_SLURM_SCRATCH:-/var/tmp/gnnff-slurm}"
TIMEOUT_S="${GNNFF_SLURM_TIMEOUT_S:-60}"
CONF=/etc/slurm/slurm.conf
MARKER="# written by gnnff-stability tests/slurm/cluster.sh"
PACKAGES=(munge slurmctld slurmd slurm-client)
STARTED="$SCRATCH/started"

log() { printf '[cluster.sh] %s\n' "$*" >&2; }
cannot_run() { log "cannot run: $*"; exit 2; }
die() { log "error: $*"; exit 1; }

node_name() { hostname -s; }

# --------------------------------------------------------------------------- install
have_binaries() {
    command -v munged >/dev/null && command -v slurmctld >/dev/null \
        && command -v slurmd >/dev/null && command -v sinfo >/dev/null \
        && command -v sbatch >/dev/null && command -v srun >/dev/null
}

install_packages() {
    have_binaries && return 0
    command -v apt-get >/dev/null || cannot_run "SLURM is not installed and apt-get is unavailable"
    log "installing ${PACKAGES[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    local out="$SCRATCH/apt.log"
    if ! apt-get update -q >"$out" 2>&1; then
        log "apt-get update failed (see $out); trying the install with the current lists"
    fi
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$out" 2>&1 \
        || cannot_run "apt-get install ${PACKAGES[*]} failed (see $out)"
    have_binaries || cannot_run "SLURM binaries still missing after apt-get install"
}

# --------------------------------------------------------------------------- config
real_memory_mb() {
    # slurmd compares RealMemory with what it measures; stay a little below it
    # and leave room for the daemons themselves.
    awk '/^MemTotal:/ {m = int($2 / 1024) - 512; if (m < 512) m = 512; print m}' /proc/meminfo
}

render_conf() {
    local node
    node="$(node_name)"
    cat <<EOF
$MARKER
# Single node, no GPUs, no accounting database (use squeue for job status).
ClusterName=gnnff
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# finished jobs stay visible to squeue/scontrol for 10 min (the executor
# plugin polls squeue because there is no slurmdbd for sacct)
MinJobAge=600
ReturnToService=2
SlurmdTimeout=300
InactiveLimit=0
KillWait=30
Waittime=0
StateSaveLocation=$SCRATCH/state
SlurmdSpoolDir=$SCRATCH/spool
SlurmctldPidFile=$SCRATCH/run/slurmctld.pid
SlurmdPidFile=$SCRATCH/run/slurmd.pid
SlurmctldLogFile=$SCRATCH/log/slurmctld.log
SlurmdLogFile=$SCRATCH/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${node} NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(real_memory_mb) State=UNKNOWN
PartitionName=main Nodes=${node} Default=YES MaxTime=INFINITE State=UP
EOF
}

write_conf() {
    mkdir -p /etc/slurm
    if [[ -f "$CONF" ]] && ! grep -qF "$MARKER" "$CONF"; then
        if slurm_answers; then
            log "using the running cluster configured by $CONF (not ours; left untouched)"
            return 1
        fi
        cannot_run "$CONF exists and was not written by cluster.sh; refusing to overwrite it"
    fi
    local tmp
    tmp="$(mktemp)"
    render_conf >"$tmp"
    if [[ -f "$CONF" ]] && cmp -s "$tmp" "$CONF"; then
        rm -f "$tmp"
    else
        install -m 0644 "$tmp" "$CONF"
        rm -f "$tmp"
        log "wrote $CONF"
        if slurm_answers; then  # daemons from an earlier start read the old file
            scontrol reconfigure || die "scontrol reconfigure failed after rewriting $CONF"
        fi
    fi
    return 0
}

# --------------------------------------------------------------------------- daemons
munge_answers() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
slurm_answers() { command -v scontrol >/dev/null && scontrol ping 2>/dev/null | grep -q "is UP"; }
ours_alive() {  # ours_alive NAME -> 0 if the pid we recorded for NAME is that daemon, alive
    local name=$1 pidfile="$STARTED/$1.pid" pid
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile")"
    [[ -n "$pid" && -r "/proc/$pid/comm" && "$(cat "/proc/$pid/comm")" == "$name" ]]
}
slurmd_alive() {  # any slurmd process on this host (ours or not)
    local comm
    for comm in /proc/[0-9]*/comm; do
        [[ "$(cat "$comm" 2>/dev/null)" == slurmd ]] && return 0
    done
    return 1
}

record() {  # record NAME PIDFILE: remember that we started NAME
    local name=$1 pidfile=$2 i
    for ((i = 0; i < 50; i++)); do
        [[ -s "$pidfile" ]] && break
        sleep 0.1
    done
    [[ -s "$pidfile" ]] || die "$name did not write $pidfile (see $SCRATCH/log/)"
    cp "$pidfile" "$STARTED/$name.pid"
    log "started $name (pid $(cat "$pidfile"))"
}

start_munged() {
    if munge_answers; then
        log "munged already answers"
        return
    fi
    [[ -s /etc/munge/munge.key ]] || {
        log "creating /etc/munge/munge.key"
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    }
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 "$SCRATCH/run/munge"
    rm -f "$SCRATCH/run/munge/munged.pid"
    runuser -u munge -- /usr/sbin/munged --pid-file="$SCRATCH/run/munge/munged.pid" \
        || die "munged failed to start (see /var/log/munge/munged.log)"
    record munged "$SCRATCH/run/munge/munged.pid"
    munge_answers || die "munged started but munge -n | unmunge fails"
}

start_slurmctld() {
    if slurm_answers; then
        log "slurmctld already answers"
        return
    fi
    rm -f "$SCRATCH/run/slurmctld.pid"
    /usr/sbin/slurmctld || die "slurmctld failed to start (see $SCRATCH/log/slurmctld.log)"
    record slurmctld "$SCRATCH/run/slurmctld.pid"
    local i
    for ((i = 0; i < 100; i++)); do
        slurm_answers && return
        sleep 0.2
    done
    die "slurmctld does not answer scontrol ping (see $SCRATCH/log/slurmctld.log)"
}

start_slurmd() {
    if ours_alive slurmd || slurmd_alive; then
        log "slurmd already running"
        return
    fi
    rm -f "$SCRATCH/run/slurmd.pid"
    /usr/sbin/slurmd || die "slurmd failed to start (see $SCRATCH/log/slurmd.log)"
    record slurmd "$SCRATCH/run/slurmd.pid"
}

node_state() { sinfo -h -N -n "$(node_name)" -o '%T' 2>/dev/null | head -n1; }

wait_idle() {
    local t0=$SECONDS state resumed=0
    while ((SECONDS - t0 < TIMEOUT_S)); do
        state="$(node_state)"
        case "$state" in
            idle | mixed | allocated) log "node $(node_name) is $state"; return 0 ;;
            down* | drain* | drained*)
                # left over from an earlier run's state files
                if ((resumed == 0 && SECONDS - t0 > 5)); then
                    scontrol update nodename="$(node_name)" state=resume >/dev/null 2>&1 || true
                    resumed=1
                fi ;;
        esac
        sleep 0.5
    done
    die "node $(node_name) not idle after ${TIMEOUT_S}s (state: '${state:-?}'; see $SCRATCH/log/)"
}

# --------------------------------------------------------------------------- commands
cmd_start() {
    [[ "$(id -u)" == 0 ]] || cannot_run "cluster.sh start needs root (uid is $(id -u))"
    mkdir -p "$SCRATCH"/{state,spool,run,log} "$STARTED"
    local t0=$SECONDS
    install_packages
    if write_conf; then
        start_munged
        start_slurmctld
        start_slurmd
    fi
    wait_idle
    log "cluster up in $((SECONDS - t0)) s"
}

stop_one() {  # stop_one NAME: SIGTERM the pid we recorded, wait, SIGKILL if needed
    local name=$1 pidfile="$STARTED/$1.pid" pid i
    [[ -f "$pidfile" ]] || return 0
    pid="$(cat "$pidfile")"
    if ours_alive "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            [[ -d "/proc/$pid" ]] || break
            sleep 0.1
        done
        if [[ -d "/proc/$pid" ]]; then
            log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
}

cmd_stop() {
    stop_one slurmd
    stop_one slurmctld
    stop_one munged
}

cmd_status() {
    local name
    munge_answers && echo "munged: answers" || echo "munged: not answering"
    slurm_answers && echo "slurmctld: answers" || echo "slurmctld: not answering"
    slurmd_alive && echo "slurmd: running" || echo "slurmd: not running"
    for name in munged slurmctld slurmd; do
        ours_alive "$name" && echo "ours: $name pid $(cat "$STARTED/$name.pid")"
    done
    command -v sinfo >/dev/null && sinfo 2>&1 || true
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 {start|stop|status}" >&2; exit 64 ;;
esac
