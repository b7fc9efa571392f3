"""A fresh clone of this tree, a wheel built from it, and an environment that can't see the
source: what the install tier starts from.

The copy holds the files git would put in a commit (tracked and untracked-but-not-ignored,
as they are on disk now, symlinks kept as symlinks), so a file someone forgot to declare as
package data fails here before anyone installs the release.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("authproxy", "admin_tui")


def tree_files(repo: Path = REPO) -> list[str]:
    """Paths (relative, '/'-separated) of the files a commit of the tree would hold."""
    try:
        listed = subprocess.run(
            [
                "git",
                "-C",
                str(repo),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"the install tier needs git and a checkout of the tree: {exc}") from exc
    return [p for p in listed.decode().split("\0") if p and os.path.lexists(repo / p)]


def copy_tree(dest: Path, repo: Path = REPO) -> list[str]:
    """Copy the tree's files (see ``tree_files``) into ``dest``; their paths."""
    files = tree_files(repo)
    for rel in files:
        src, dst = repo / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    return files


def runtime_files(tree: Path, files: list[str]) -> set[str]:
    """Every file under the packages as an install must hold it (a symlinked directory, such
    as authproxy/engines/profiles, by its contents)."""
    out: set[str] = set()
    for rel in files:
        if rel.split("/", 1)[0] not in PACKAGES:
            continue
        path = tree / rel
        if path.is_dir():
            for root, _, names in os.walk(path, followlinks=True):
                out |= {(Path(root) / n).relative_to(tree).as_posix() for n in names}
        else:
            out.add(rel)
    return out


def build_wheel(tree: Path, out: Path) -> Path:
    """``pip wheel --no-deps`` of ``tree`` into ``out``: the wheel's path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(tree)],
        check=True,
        capture_output=True,
        timeout=600,
        env=user_env(),
        cwd=out,
    )
    [wheel] = out.glob("authproxy-*.whl")
    return wheel


def wheel_package_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return {n for n in zf.namelist() if n.split("/", 1)[0] in PACKAGES}


def user_env(**extra: str) -> dict[str, str]:
    """This environment as a newcomer's shell would have it: nothing that points Python at
    the source tree or the test venv (PYTHONPATH, VIRTUAL_ENV, its bin on PATH), no
    AUTHPROXY_* overrides."""
    test_bin = Path(sys.prefix, "bin").resolve()
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AUTHPROXY_")}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != test_bin]
    env["PATH"] = os.pathsep.join(path)
    return env | extra
