"""The microVM image set: a Debian cloud kernel, a small initramfs, a read-only root filesystem.

Built offline from Debian's packages: the kernel and its virtio modules from the
host's ``linux-image-cloud-amd64``, busybox from ``busybox-static``, and the root
filesystem from the same debootstrap tree as the docker image (plus the guest
agent), packed by ``mkfs.ext4 -d`` without mounting anything. Each file's digest
is recorded; the set's digest goes into every build's provenance.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import EnvironmentError_, SandboxError
from compiler.home import home
from registry.digest import digest_bytes, digest_json

from .images import DEFAULT_MIRROR, DEFAULT_SUITE, Progress, base_tree

MODULES = ("virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "virtio_console")
AGENT_PATH = "opt/skillc/guest_agent.py"
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in {modules}; do insmod /lib/modules/$m.ko; done
root=; ws=
for _ in $(seq 400); do
  for d in /sys/block/vd*; do
    case "$(cat $d/serial 2>/dev/null)" in
      skillc-root) root=/dev/${{d##*/}};; skillc-ws) ws=/dev/${{d##*/}};;
    esac
  done
  [ -n "$root" ] && [ -b "$root" ] && break
  sleep 0.05
done
disk=64
for arg in $(cat /proc/cmdline); do case $arg in skillc.disk=*) disk=${{arg#skillc.disk=}};; esac; done
mkdir -p /newroot
mount -t ext4 -o ro,noatime "$root" /newroot || {{ echo "skillc: no root filesystem"; poweroff -f; }}
mount -t tmpfs -o size=${{disk}}m,mode=0755,nosuid,nodev workspace /newroot/workspace
mount -t tmpfs -o size=256m,mode=1777,nosuid,nodev tmp /newroot/tmp
ip link set lo up
echo 1 > /proc/sys/vm/overcommit_memory
echo 0 > /proc/sys/user/max_user_namespaces
echo 1 > /proc/sys/kernel/dmesg_restrict
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /usr/bin/python3 -I /{agent} "$ws"
"""


@dataclass(frozen=True)
class ImageSet:
    """Where the kernel, initramfs and root filesystem are, and their digests."""

    folder: Path
    kernel_version: str
    kernel: str
    initrd: str
    rootfs: str
    built_at: float
    code: str = ""  # digest of the guest agent and init this set was built with

    @property
    def digest(self) -> str:
        """Identity of the whole set."""
        return digest_json({"kernel": self.kernel, "initrd": self.initrd, "rootfs": self.rootfs})

    def path(self, name: str) -> Path:
        """vmlinuz, initrd.img or rootfs.ext4."""
        return self.folder / name


def folder() -> Path:
    """Where the current image set lives."""
    return home().images / "microvm"


def code_digest() -> str:
    """Identity of what skillc puts into the images (a change means: rebuild them)."""
    return digest_bytes(Path(__file__).with_name("guest_agent.py").read_bytes()
                        + INIT.encode() + " ".join(MODULES).encode())


def load() -> ImageSet | None:
    """The built image set, if there is one and it matches this version of skillc."""
    record = folder() / "manifest.json"
    if not record.exists():
        return None
    built = ImageSet(folder=folder(), **json.loads(record.read_text()))
    return built if built.code == code_digest() else None


def host_kernel() -> tuple[str, Path, Path]:
    """(version, vmlinuz, modules folder) of the installed Debian cloud kernel."""
    for vmlinuz in sorted(Path("/boot").glob("vmlinuz-*-cloud-amd64"), reverse=True):
        version = vmlinuz.name.removeprefix("vmlinuz-")
        modules = Path("/lib/modules") / version
        if modules.is_dir():
            return version, vmlinuz, modules
    raise EnvironmentError_("no Debian cloud kernel found: apt-get install linux-image-cloud-amd64")


def initramfs(modules: Path) -> bytes:
    """A gzipped newc cpio: busybox, the virtio modules, and /init."""
    busybox = Path("/bin/busybox")
    # The initramfs has no C library: busybox must be static (no ELF interpreter path).
    if not busybox.exists() or b"/ld-linux" in busybox.read_bytes()[:8192]:
        raise EnvironmentError_("a static busybox is needed: apt-get install busybox-static")
    dep = {line.split(":")[0].rsplit("/", 1)[-1].removesuffix(".ko"): line.split(":")[0]
           for line in (modules / "modules.dep").read_text().splitlines()}
    with tempfile.TemporaryDirectory(prefix="skillc-initrd-") as tmp:
        root = Path(tmp)
        for d in ("bin", "dev", "proc", "sys", "lib/modules", "newroot"):
            (root / d).mkdir(parents=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        for name in MODULES:
            if name not in dep:
                raise SandboxError(f"kernel module {name} not found under {modules}")
            shutil.copy2(modules / dep[name], root / "lib" / "modules" / f"{name}.ko")
        init = root / "init"
        init.write_text(INIT.format(modules=" ".join(MODULES), agent=AGENT_PATH))
        init.chmod(0o755)
        names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
                              input="\n".join(names).encode(), cwd=root, capture_output=True,
                              check=True).stdout
    return gzip.compress(cpio, mtime=0)


def rootfs(tree: Path, dest: Path) -> None:
    """A read-only ext4 image of ``tree`` with the guest agent (mkfs.ext4 -d: nothing mounted)."""
    agent = tree / AGENT_PATH
    agent.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(__file__).with_name("guest_agent.py"), agent)
    (tree / "workspace").mkdir(exist_ok=True)
    size = sum(f.stat().st_size for f in tree.rglob("*") if f.is_file() and not f.is_symlink())
    megabytes = int(size * 1.3 / 2**20) + 64
    proc = subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "skillc-root", "-E",
                           "root_owner=0:0", "-d", str(tree), str(dest), f"{megabytes}M"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SandboxError(f"mkfs.ext4 failed: {proc.stderr.strip()}")


def build(suite: str = DEFAULT_SUITE, mirror: str = DEFAULT_MIRROR,
          progress: Progress = lambda _: None) -> ImageSet:
    """Build and record the image set."""
    for tool in ("mkfs.ext4", "cpio", "qemu-system-x86_64"):
        if not shutil.which(tool):
            raise EnvironmentError_(f"{tool} is not installed: apt-get install e2fsprogs cpio "
                                    "qemu-system-x86")
    version, vmlinuz, modules = host_kernel()
    out = folder()
    staging = Path(tempfile.mkdtemp(prefix="microvm-", dir=home().images if
                                    home().images.exists() else None))
    try:
        with tempfile.TemporaryDirectory(prefix="skillc-rootfs-") as tmp:
            tree = Path(tmp) / "rootfs"
            base_tree(tree, suite, mirror, progress)
            progress("packing the root filesystem (mkfs.ext4 -d)")
            rootfs(tree, staging / "rootfs.ext4")
        progress(f"initramfs with busybox and the virtio modules of {version}")
        (staging / "initrd.img").write_bytes(initramfs(modules))
        shutil.copy2(vmlinuz, staging / "vmlinuz")
        digests = {name.split(".")[0] if name != "vmlinuz" else "kernel":
                   digest_bytes((staging / name).read_bytes())
                   for name in ("vmlinuz", "initrd.img", "rootfs.ext4")}
        record = {"kernel_version": version, "kernel": digests["kernel"],
                  "initrd": digests["initrd"], "rootfs": digests["rootfs"],
                  "built_at": time.time(), "code": code_digest()}
        (staging / "manifest.json").write_text(json.dumps(record, indent=2))
        for f in staging.iterdir():
            f.chmod(0o644)
        staging.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = load()
    assert result is not None
    return result


def tar_bytes(entries: dict[str, bytes]) -> bytes:
    """A small tar (used for an empty workspace disk)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()
