"""`hashhub demo` as a person runs it: start it, wait for the printed curl, run it, press Ctrl-C."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import time

import httpx
import pytest

from .procs import HASHHUB, env, free_port

pytestmark = pytest.mark.slow


def test_demo_prints_a_working_curl_and_stops_on_ctrl_c(tmp_path) -> None:
    args = [*HASHHUB, "demo", "--dir", str(tmp_path), "--hub-port", str(free_port())]
    args += ["--agent-port", str(free_port())]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())
    lines: list[str] = []
    agent_url = ""
    try:
        deadline = time.monotonic() + 180
        curl = None
        while curl is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if line.strip().startswith("curl "):
                curl = line.strip()
        assert curl, "".join(lines)
        text = "".join(lines)
        assert "hub:    http://127.0.0.1:" in text and "agent:  http://127.0.0.1:" in text
        assert "demo-hotline key: hh_" in text and "demo-platform key: hh_" in text
        assert "CC BY 4.0" in text

        if shutil.which("curl"):
            answer = json.loads(
                subprocess.run(shlex.split(curl), capture_output=True, text=True, check=True).stdout
            )
        else:  # the same request without the curl binary
            parts = shlex.split(curl)
            key = parts[parts.index("-H") + 1].split()[-1]
            photo = parts[parts.index("-F") + 1].removeprefix("file=@")
            with open(photo, "rb") as handle:
                answer = httpx.post(
                    parts[-1], headers={"Authorization": f"Bearer {key}"}, files={"file": handle}
                ).json()
        assert answer["matched"] and answer["action"] == "block_and_report"
        assert answer["matches"][0]["contributors"] == ["demo-hotline"]
        agent_url = shlex.split(curl)[-1].rsplit("/api/", 1)[0]
        assert httpx.get(f"{agent_url}/healthz").json()["items"] == 8
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, proc.stdout.read()
    with pytest.raises(httpx.TransportError):  # the servers went down with it
        httpx.get(f"{agent_url}/healthz", timeout=2)
