"""CPU of `posterm provision` as posterm-provision.service runs it at a box's first boot, against
the machine's own floor in the same run.

(a) `python -I -m terminal.provision` on the file image/lib.sh writes for the boot tests (offline:
    broker CA and HQ's root key, the card key, a [printer] section, no certificate: so the box
    makes its key and request), a fresh state directory each run, as root with --owner root.
(b) floor: a bare `python -I` that imports what provisioning cannot do without (cryptography's
    x509, serialization and EC, tomllib), makes a P-256 key and a request, and exits.
Prints each run's CPU (user + system of the child) and the medians, and (a) over (b). Under
emulation (qemu-user in the image's arm64 root, or the boot itself) every imported module costs
far more, which is why the count of modules loaded is printed too.

Run: .venv/bin/python bench/bench_provision.py [runs] [SOURCE_DIR]
(SOURCE_DIR: another tree's `terminal` package, e.g. `git archive REV terminal | tar -x -C DIR`,
to measure that code the same way.)
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOOR = """
import sys, tomllib
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "S001/T42")])
csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
csr.public_bytes(serialization.Encoding.PEM)
"""
# `python -I -c` with these and the provisioning arguments, the first argument being a source tree
# to import terminal from ("" for this checkout's).
PRELUDE = ("import runpy, sys\nsource = sys.argv.pop(1)\nif source:\n"
           "    sys.path.insert(0, source)\n")
RUN = PRELUDE + "runpy.run_module('terminal.provision', run_name='__main__')\n"
COUNT = (PRELUDE + "try:\n    runpy.run_module('terminal.provision', run_name='__main__')\n"
         "except SystemExit:\n    pass\nprint(len(sys.modules), file=sys.__stdout__)\n")


def cpu_of(argv: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(argv, capture_output=True, text=True, cwd="/", check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{argv[:4]}: {result.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(runs: int, source: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-provision-"))
    try:
        subprocess.run(["bash", "-c", f'. "{REPO}/image/lib.sh" && write_provisioning "{work}"'],
                       check=True, capture_output=True)

        def provision_argv(n: int, *head: str) -> list[str]:
            run = work / f"run{n}"
            (run / "boot").mkdir(parents=True)
            shutil.copy(work / "posterm-provision.toml", run / "boot/posterm-provision.toml")
            return [sys.executable, "-I", *head, "--from", str(run / "boot/posterm-provision.toml"),
                    "--state-dir", str(run / "state"), "--error-file", str(run / "boot/err.txt"),
                    "--udev-rules", str(run / "90.rules"), "--trust-dir", str(run / "trust"),
                    "--owner", "root"]

        provision, floor = [], []
        for n in range(runs):  # interleaved, so both see the same load
            provision.append(cpu_of(provision_argv(n, "-c", RUN, source)))
            floor.append(cpu_of([sys.executable, "-I", "-c", FLOOR]))
        modules = subprocess.run(provision_argv(runs, "-c", COUNT, source), capture_output=True,
                                 text=True, check=True).stdout.strip()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    a, b = statistics.median(provision), statistics.median(floor)
    print(f"(a) posterm provision: CPU median {a:.3f} s, min {min(provision):.3f} s over "
          f"{runs} runs ({modules} modules loaded)")
    print(f"(b) floor (interpreter, cryptography, a key and a request): median {b:.3f} s")
    print(f"(a)/(b) = {a / b:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9, sys.argv[2] if len(sys.argv) > 2 else "")
