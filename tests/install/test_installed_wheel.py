"""What `pip install .` (not `-e`) gives a newcomer: every runtime file, a gateway that serves
and refuses, an admin UI that draws, and the README's first command working from a fresh clone.

Everything here runs the installed venv's console scripts from a temporary directory with an
environment that can't reach the source tree (see tree.user_env); the first test proves it.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import aiohttp
import yaml
from fakes.engine import running_engine
from functional.helpers import KEY_RE, Secret, bearer, chat_body
from functional.serve_process import serving
from tui.tmux import tmux_session

from .conftest import ReadmeRun
from .tree import build_wheel, copy_tree, runtime_files, user_env, wheel_package_files


def _run(venv_bin: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv_bin / args[0]), *args[1:]],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _config(tmp: Path, upstream: str, port: int = 9) -> Path:
    path = tmp / "authproxy.yaml"
    raw = {
        "listen": {"host": "127.0.0.1", "port": port},
        "data_dir": "data",
        "upstreams": [{"name": "local", "url": upstream, "models": ["tiny"]}],
        "log_level": "info",
    }
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_the_installed_package_is_the_one_imported(venv_bin: Path, tmp_path: Path) -> None:
    done = _run(
        venv_bin,
        tmp_path,
        "python",
        "-c",
        "import authproxy, admin_tui; print(authproxy.__file__); print(admin_tui.__file__)",
    )
    assert done.returncode == 0, done.stderr
    site = venv_bin.parent / "lib"
    for module in done.stdout.split():
        assert Path(module).is_relative_to(site), module


def test_the_wheel_and_the_install_carry_every_runtime_file(
    readme_run: ReadmeRun, tmp_path: Path
) -> None:
    tree = tmp_path / "clone"
    files = copy_tree(tree)
    expected = runtime_files(tree, files)
    assert "admin_tui/app.tcss" in expected and "authproxy/login/templates/base.html" in expected
    wheel = build_wheel(tree, tmp_path)
    assert wheel_package_files(wheel) == expected
    # And what `pip install .` put into the venv (its RECORD), byte code aside.
    [record] = readme_run.venv.glob("lib/python3*/site-packages/authproxy-*.dist-info/RECORD")
    installed = {
        line.split(",", 1)[0]
        for line in record.read_text(encoding="utf-8").splitlines()
        if line.split("/", 1)[0] in ("authproxy", "admin_tui") and "/__pycache__/" not in line
    }
    assert installed == expected


async def test_installed_gateway_serves_with_a_key_and_refuses_without(
    venv_bin: Path, tmp_path: Path
) -> None:
    async with running_engine(models=["tiny"]) as engine:
        config = _config(tmp_path, engine.base_url, port=0)
        init = await asyncio.to_thread(
            _run, venv_bin, tmp_path, "authproxy", "--config", str(config), "init"
        )
        assert init.returncode == 0, init.stderr
        key = Secret(init.stdout.strip())
        assert KEY_RE.match(key)
        argv = [str(venv_bin / "authproxy"), "--config", str(config), "serve"]
        async with serving(argv, cwd=tmp_path, env=user_env()) as gw:
            base = f"http://127.0.0.1:{gw.port}"
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                async with http.post(
                    base + "/v1/chat/completions", json=chat_body(max_tokens=3), headers=bearer(key)
                ) as r:
                    assert r.status == 200
                    answer = await r.json()
                assert answer["choices"][0]["message"]["content"] == "tok0 tok1 tok2 "
                async with http.get(base + "/v1/models") as r:
                    assert r.status == 401
                    assert (await r.json())["error"]["code"] == "missing_api_key"
                async with http.get(base + "/auth/login") as r:  # templates and stylesheet
                    assert r.status == 200 and "<style" in await r.text()
            gw.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(gw.proc.wait(), 30) == 0
        log = "".join(gw.log)
        assert "stopped" in log and "Traceback" not in log
    assert len(engine.requests) == 1
    # The engine profiles, a symlinked directory in the tree.
    command = _run(
        venv_bin,
        tmp_path,
        "authproxy",
        "engine",
        "command",
        "llama-server-cpu",
        "--model",
        str(tmp_path / "m.gguf"),
    )
    assert command.returncode == 0 and command.stdout.startswith("llama-server --model ")


def test_installed_admin_draws_its_first_screen_in_tmux(venv_bin: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, "http://127.0.0.1:9")
    assert _run(venv_bin, tmp_path, "authproxy", "--config", str(config), "init").returncode == 0
    command = [
        *("env", "-u", "PYTHONPATH", "-u", "VIRTUAL_ENV"),  # tmux's server has the test's env
        str(venv_bin / "authproxy"),
        "--config",
        str(config),
        "admin",
    ]
    with tmux_session(command, tmp_path) as tmux:
        text = tmux.wait_for(lambda s: ("Upstreams" in s and "local down" in s) or "EXITED" in s)
        assert "Upstreams" in text and "Traceback" not in text, text
        tmux("send-keys", "-t", "tui", "C-q")
        ended = tmux.wait_for(lambda s: "APP EXITED" in s, within=15)
    assert "APP EXITED 0" in ended and "Traceback" not in ended


def test_the_readmes_first_command_works_from_a_fresh_clone(readme_run: ReadmeRun) -> None:
    assert readme_run.command == (
        "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/authproxy serve"
    )
    assert readme_run.healthz == 200
    assert readme_run.init_printed_one_key and readme_run.models_with_that_key == 200
    assert "Traceback" not in readme_run.output and "stopped" in readme_run.output
    print(f"install + start took {readme_run.seconds_to_serve:.0f}s")
