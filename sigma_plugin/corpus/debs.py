"""Rootless use of Debian packages: `apt-get download` into a cache, unpack with dpkg.

Nothing is installed system-wide; packages are unpacked under a work directory.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional


class DebianToolError(RuntimeError):
    """apt-get/dpkg missing, or a package could not be downloaded or unpacked."""


def require_tools(purpose: str, fallback_hint: str,
                  tools=("apt-get", "apt-cache", "dpkg", "dpkg-deb")) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise DebianToolError(
            f"{purpose} needs {', '.join(missing)} (Debian/Ubuntu package tools) on PATH, "
            f"and they were not found. {fallback_hint}")


def _apt_options() -> List[str]:
    # As root, apt drops to user _apt for downloads and warns when _apt cannot write the
    # target directory; downloading as the calling user is what a non-root user gets anyway.
    return ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []


def install_closure(packages: Iterable[str]) -> List[str]:
    """`packages` plus the dependencies this system lacks (apt-get's simulated install).

    Upgrades of already-installed libraries are left out (the system's copies are used).
    Falls back to `packages` alone if the simulation fails.
    """
    packages = list(packages)
    proc = subprocess.run(["apt-get", "-s", "--no-install-recommends", "install", *packages],
                          capture_output=True, text=True)
    wanted = list(packages)
    if proc.returncode != 0:
        return wanted
    for line in proc.stdout.splitlines():
        parts = line.split()
        # "Inst NAME (VERSION ...)" is a new package; "Inst NAME [OLD] (NEW ...)" an upgrade.
        if len(parts) >= 3 and parts[0] == "Inst" and not parts[2].startswith("["):
            name = parts[1].split(":")[0]
            if name not in wanted:
                wanted.append(name)
    return wanted


def available(packages: Iterable[str]) -> List[str]:
    """The names in `packages` that apt has a candidate version for (one `apt-cache show`)."""
    packages = list(packages)
    proc = subprocess.run(["apt-cache", "show", "--no-all-versions", *packages],
                          capture_output=True, text=True)
    known = {line.split(":", 1)[1].strip() for line in proc.stdout.splitlines()
             if line.startswith("Package:")}
    return [p for p in packages if p in known]


def cached_deb(package: str, debdir: Path) -> Optional[Path]:
    hits = sorted(Path(debdir).glob(f"{package}_*.deb"))
    return hits[-1] if hits else None


def _run_download(names: List[str], partial: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", *_apt_options(), "download", *names], cwd=partial,
                          capture_output=True, text=True)


def download(packages: Iterable[str], debdir, fallback_hint: str,
             log: Callable[[str], None] = print) -> Dict[str, Path]:
    """Download the .debs not yet in `debdir`; return {package: deb path} for those available.

    Packages that apt cannot find are skipped with a warning; if none at all is available
    this raises DebianToolError with `fallback_hint`.
    """
    debdir = Path(debdir)
    debdir.mkdir(parents=True, exist_ok=True)
    packages = list(dict.fromkeys(packages))
    for stale in debdir.glob(".partial-*"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    missing = [p for p in packages if cached_deb(p, debdir) is None]
    failed: Dict[str, str] = {}
    if missing:
        known = available(missing)
        for name in missing:
            if name not in known:
                failed[name] = "apt knows no such package (apt-cache show found nothing)"
        missing = known
    if missing:
        partial = debdir / f".partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            proc = _run_download(missing, partial)
            if proc.returncode != 0:  # one unknown name fails the batch: retry one by one
                for name in missing:
                    one = _run_download([name], partial)
                    if one.returncode != 0:
                        failed[name] = _last_error(one.stderr)
            for deb in partial.glob("*.deb"):  # complete downloads only, moved into the cache
                os.replace(deb, debdir / deb.name)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    found = {p: cached_deb(p, debdir) for p in packages}
    found = {p: d for p, d in found.items() if d is not None}
    for name in packages:
        if name not in found:
            log(f"warning: skipping Debian package {name!r}: "
                f"{failed.get(name, 'no .deb after apt-get download')}")
    if not found:
        reasons = "; ".join(f"{n}: {e}" for n, e in failed.items()) or "unknown reason"
        raise DebianToolError(
            f"could not download any of the Debian packages ({reasons}). If apt knows none "
            f"of them, its package lists are empty: run `apt-get update` (as root) once. "
            f"{fallback_hint}")
    return found


def _last_error(stderr: str) -> str:
    lines = [l for l in stderr.strip().splitlines() if l.startswith("E:")] or stderr.strip().splitlines()
    return lines[-1] if lines else "apt-get download failed"


def unpack_into(deb: Path, root: Path, fallback_hint: str = "") -> None:
    """`dpkg -x deb root` once (several packages share one tree; a mark records each).

    Rerunning after an interruption unpacks the same files again, which is harmless.
    """
    root = Path(root)
    mark = root / ".unpacked" / Path(deb).name
    if mark.exists():
        return
    mark.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["dpkg", "-x", str(deb), str(root)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise DebianToolError(f"`dpkg -x {deb} {root}` failed: {proc.stderr.strip()}. {fallback_hint}")
    mark.touch()


def iter_deb_members(deb: Path, wanted: Callable[[str], bool]):
    """Yield (path, bytes) of the regular files in a .deb's data archive whose path passes `wanted`.

    Streams `dpkg-deb --fsys-tarfile` (handles xz/zstd data archives) without unpacking to disk.
    """
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    finished = False
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if member.isfile() and wanted(name):
                    yield name, tar.extractfile(member).read()
        finished = True
    except tarfile.TarError as e:
        raise DebianToolError(f"{deb}: not a readable Debian package ({e})") from e
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        if proc.wait() != 0 and finished:
            raise DebianToolError(f"`dpkg-deb --fsys-tarfile {deb}` failed: {err.strip()}")


def library_dirs(root: Path) -> List[str]:
    """Every directory under `root` that holds shared libraries (for LD_LIBRARY_PATH)."""
    dirs = {str(p.parent) for p in Path(root).rglob("*.so*") if p.is_file() or p.is_symlink()}
    return sorted(dirs)
