#!/usr/bin/env bash
# Brings up a single-node Slurm cluster on this machine for erebor's Slurm tests and benchmark,
# without systemd: Debian's slurmctld, slurmd, slurm-client and munge (22.05), munged as user
# munge, slurmctld and slurmd as root. Idempotent: what already runs is left alone.
#
#   scripts/slurm-up.sh          install if missing, configure, start, wait until the node is idle
#   scripts/slurm-up.sh --down   stop slurmd, slurmctld and munged (scripts/slurm-down.sh does the same)
#
# State (spool, saved state, logs, pid files) lives under $EREBOR_SLURM_DIR
# (default /var/tmp/erebor-slurm); the configuration is written to /etc/slurm/slurm.conf, where
# sbatch, squeue and scancel look for it. Needs root (or sudo).
set -euo pipefail

DIR="${EREBOR_SLURM_DIR:-/var/tmp/erebor-slurm}"
CONF=/etc/slurm/slurm.conf
WAIT_SECONDS="${EREBOR_SLURM_WAIT:-60}"

say() { printf 'slurm-up: %s\n' "$*"; }
die() { printf 'slurm-up: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "run as root (or install sudo): slurmctld and slurmd run as root here"
    exec sudo -E "$0" "$@"
fi

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() {
    local name=$1 pidfile=$2
    if alive "$pidfile"; then
        local pid
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        say "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
}

down() {
    stop_pidfile slurmd "$DIR/run/slurmd.pid"
    stop_pidfile slurmctld "$DIR/run/slurmctld.pid"
    stop_pidfile munged /run/munge/munged.pid
}

if [ "${1:-}" = "--down" ]; then
    down
    exit 0
fi

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || command -v /usr/sbin/slurmctld >/dev/null || missing+=(slurmctld)
    [ -x /usr/sbin/slurmd ] || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    [ -x /usr/sbin/munged ] || missing+=(munge)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
    fi
}

start_munge() {
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        say "created /etc/munge/munge.key"
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    if alive /run/munge/munged.pid; then
        return
    fi
    runuser -u munge -- /usr/sbin/munged --force
    say "started munged as user munge"
}

write_conf() {
    local host cpus memory
    host=$(hostname -s)
    cpus=$(nproc --all)
    # RealMemory a little under the machine's, so slurmd never finds less than configured.
    memory=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.95 }' /proc/meminfo)
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run" /etc/slurm
    local wanted
    wanted=$(cat <<EOF
# Written by erebor's scripts/slurm-up.sh: a single-node cluster for tests.
ClusterName=erebor
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=64
ReturnToService=2
# Schedule held (--begin) and waiting jobs within seconds, not the default minute.
SchedulerParameters=sched_interval=2,bf_interval=2
MailProg=/bin/true
MinJobAge=86400
KillWait=10
SlurmctldTimeout=30
SlurmdTimeout=60
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:64
EOF
)
    if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$wanted" ]; then
        printf '%s\n' "$wanted" >"$CONF"
        say "wrote $CONF (node $host, $cpus CPUs, ${memory} MB)"
        CONF_CHANGED=1
    fi
}

start_daemons() {
    if [ "${CONF_CHANGED:-0}" = 1 ]; then
        stop_pidfile slurmd "$DIR/run/slurmd.pid"
        stop_pidfile slurmctld "$DIR/run/slurmctld.pid"
    fi
    start_daemon slurmctld
    start_daemon slurmd
}

start_daemon() {
    local name=$1
    if alive "$DIR/run/$name.pid"; then
        return
    fi
    /usr/sbin/"$name"
    for _ in $(seq 20); do alive "$DIR/run/$name.pid" && break; sleep 0.1; done
    sleep 0.3
    alive "$DIR/run/$name.pid" || die "$name exited at once: $(tail -n 3 "$DIR/log/$name.log" 2>/dev/null)"
    say "started $name"
}

wait_idle() {
    local host state deadline
    host=$(hostname -s)
    deadline=$((SECONDS + WAIT_SECONDS))
    while [ $SECONDS -lt $deadline ]; do
        alive "$DIR/run/slurmctld.pid" || die "slurmctld died: $(tail -n 3 "$DIR/log/slurmctld.log")"
        state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1 || true)
        case "$state" in
            idle|mixed|allocated)
                say "node $host is $state (${SECONDS}s)"
                return 0 ;;
            down*|drain*)
                scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.5
    done
    die "node $host is not idle after ${WAIT_SECONDS}s (state: ${state:-unknown}); see $DIR/log/"
}

install_packages
start_munge
write_conf
start_daemons
wait_idle
