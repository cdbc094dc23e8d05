"""A throwaway single-node SLURM on this machine, for the cluster test (and by hand).

Debian's `slurm-wlm` and `munge` packages (installed with apt-get as root) provide the daemons. Everything
lives under one scratch directory: `slurm.conf`, `gres.conf`, the munge socket, state, spool and daemon logs.
Nothing is written to /etc/slurm, so other `snakemake` calls on this machine stay fast: with a system-wide
`slurm.conf` and no controller, the SLURM executor plugin's `scontrol show config` at startup costs 10 s.

The one node has this host's CPUs and memory and one partition, `test`. It also declares one `gpu` GRES
backed by a stand-in device (/dev/null): SLURM schedules `--gpus=1` requests on it (one at a time), so the
GPU rules' requests are submitted and honoured as on a GPU cluster, but no job gets a real GPU.

    python tests/cluster/slurm_node.py -- snakemake --profile ...   # runs the command inside a live SLURM

Without `slurmdbd`, `sacct` answers "accounting storage is disabled" yet exits 0, which makes the executor
plugin lose its jobs; the test therefore polls with `squeue`, and `MinJobAge` keeps finished jobs visible.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

DAEMONS = ("munged", "slurmctld", "slurmd")
DEBIAN_PACKAGES = ("slurm-wlm", "munge")
PARTITION = "test"
# Finished jobs stay visible to squeue/scontrol for an hour: the plugin polls with squeue, the test inspects them.
MIN_JOB_AGE = 3600
# Jobs without --mem get this per CPU instead of the whole node.
DEF_MEM_PER_CPU_MB = 1000


def missing_tools() -> list[str]:
    return [tool for tool in (*DAEMONS, "sbatch", "squeue", "scontrol") if shutil.which(tool) is None]


def install_with_apt() -> str | None:
    """Install SLURM and munge when root; returns why it could not, or None on success."""
    if not missing_tools():
        return None
    if os.geteuid() != 0:
        return f"SLURM is not installed ({', '.join(missing_tools())} missing) and apt-get needs root"
    if shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *DEBIAN_PACKAGES]):
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr[-500:]}"
    return None if not missing_tools() else f"still missing after apt-get: {missing_tools()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_hardware() -> dict[str, str]:
    """`slurmd -C` describes this host as slurmd will see it (CPUs, sockets, cores, memory)."""
    line = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    fields = dict(item.split("=", 1) for item in line.split())
    fields.pop("NodeName", None)
    return fields


def write_config(root: Path, hostname: str) -> Path:
    """slurm.conf + gres.conf for one node named after this host; returns the slurm.conf path."""
    hw = node_hardware()
    # Leave memory for the submit host's own Snakemake and the daemons.
    hw["RealMemory"] = str(int(hw["RealMemory"]) * 3 // 4)
    for sub in ("state", "spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    conf = root / "slurm.conf"
    node = " ".join(f"{k}={v}" for k, v in hw.items())
    conf.write_text("\n".join([
        "ClusterName=layerwise-test",
        f"SlurmctldHost={hostname}(127.0.0.1)",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root / 'munge.socket'}",
        f"SlurmctldPort={free_port()}",
        f"SlurmdPort={free_port()}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd.log'}",
        # No cgroups in a container: track processes by parent id, no task binding.
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "MpiDefault=none",
        "SchedulerType=sched/backfill",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "GresTypes=gpu",
        "ReturnToService=2",
        f"MinJobAge={MIN_JOB_AGE}",
        f"DefMemPerCPU={DEF_MEM_PER_CPU_MB}",
        f"NodeName={hostname} NodeAddr=127.0.0.1 {node} Gres=gpu:1 State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={hostname} Default=YES MaxTime=INFINITE State=UP",
        "",
    ]))
    # The stand-in GPU: SLURM only needs a device file to count; /dev/null is not a GPU.
    (root / "gres.conf").write_text(f"NodeName={hostname} Name=gpu File=/dev/null\n")
    return conf


def _wait(condition, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in logs if p.exists())
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")


@contextlib.contextmanager
def single_node_slurm(root: Path, base_env: dict[str, str] | None = None, timeout: float = 60.0
                      ) -> Iterator[dict[str, str]]:
    """Start munged, slurmctld and slurmd (all in the foreground, as our children) under `root`; yield the
    environment (`base_env`, default os.environ) that points SLURM's client tools at them; stop all three by
    PID on exit."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    hostname = socket.gethostname().split(".")[0]
    conf = write_config(root, hostname)
    env = dict(os.environ if base_env is None else base_env, SLURM_CONF=str(conf))
    # Inside a job, snakemake-executor-plugin-slurm-jobstep 0.6.1 runs the rule with `srun` after dropping
    # every SLURM_* variable but the job's identity, SLURM_CONF included, so that srun would look for
    # /etc/slurm/slurm.conf. This SLURM keeps its config out of /etc (see above): a `srun` first on the
    # jobs' PATH (sbatch exports the submit environment) puts SLURM_CONF back and runs the real srun.
    shims = root / "bin"
    shims.mkdir(exist_ok=True)
    (shims / "srun").write_text(f'#!/bin/sh\nSLURM_CONF="{conf}" exec {shutil.which("srun")} "$@"\n')
    (shims / "srun").chmod(0o755)
    env["PATH"] = f"{shims}{os.pathsep}{env.get('PATH', os.defpath)}"
    procs: list[subprocess.Popen] = []
    logs = [root / "munged.log", root / "slurmctld.log", root / "slurmd.log"]

    def start(*command: str, log: str) -> None:
        out = open(root / log, "ab")
        procs.append(subprocess.Popen(list(command), env=env, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True))

    try:
        # -F: foreground, so munged is our child and leaves no zombie; its own socket, key from the package.
        start("munged", "-F", "--force", f"--socket={root / 'munge.socket'}", f"--pid-file={root / 'munged.pid'}",
              f"--seed-file={root / 'munged.seed'}", f"--log-file={root / 'munged.log'}", log="munged.out")
        _wait(lambda: (root / "munge.socket").exists(), timeout, "munged", logs)
        start("slurmctld", "-D", "-i", "-f", str(conf), log="slurmctld.out")
        start("slurmd", "-D", "-f", str(conf), "-N", hostname, log="slurmd.out")

        def idle() -> bool:
            done = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=env)
            return done.returncode == 0 and done.stdout.strip() == "idle"

        _wait(lambda: all(p.poll() is None for p in procs) and idle() or any(p.poll() is not None for p in procs),
              timeout, "the node to be idle", logs)
        if dead := [p.args[0] for p in procs if p.poll() is not None]:
            raise RuntimeError(f"{dead} exited at start; logs in {root}")
        yield env
    finally:
        # Cancel what is left, then stop the daemons in reverse order of start, by PID.
        if procs and shutil.which("scancel"):
            subprocess.run(["scancel", "--full", "--partition", PARTITION], env=env, capture_output=True)
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def main(argv: list[str]) -> int:
    """`slurm_node.py [--root DIR] -- COMMAND...`: run COMMAND with a live single-node SLURM around it."""
    root = Path(argv[argv.index("--root") + 1]) if "--root" in argv else Path("/tmp/layerwise-slurm")
    command = argv[argv.index("--") + 1:] if "--" in argv else ["sinfo"]
    if reason := install_with_apt():
        print(reason, file=sys.stderr)
        return 1
    with single_node_slurm(root) as env:
        return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
