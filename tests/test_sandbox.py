"""The process that grades "your test": between versions it cleans up after the student's test,
and that clean-up must stay inside the sandbox. Unsealed (--no-sandbox) it runs on the host,
where killing "every other process" and emptying /tmp would take the machine down with it."""
import os
import subprocess
import tempfile
import time

import pytest

from transformer_debug.sandbox import Sandbox, bwrap_available

IMPL = "def answer():\n    return 42\n"
# A test that passes on the implementation, and leaves a child and a file behind.
TEST = """
def test_it(impl):
    import subprocess, tempfile
    subprocess.Popen(["sleep", "30"], start_new_session=False)
    open(tempfile.gettempdir() + "/left-behind", "w").write("x")
    assert impl.answer() == 42
"""


def _variant(sealed: bool) -> bool:
    with Sandbox(writable=False, sealed=sealed) as box:
        reply = box.request({"op": "variant", "impl": IMPL, "test": TEST, "name": "test_it",
                             "prelude": "", "seconds": 20}, seconds=60)
    return reply.get("passed") is True


@pytest.mark.parametrize("sealed", [False, True])
def test_grading_a_version_cleans_up_only_its_own_processes_and_files(sealed):
    if sealed and bwrap_available():
        pytest.skip(bwrap_available())
    bystander = subprocess.Popen(["sleep", "120"])           # the instructor's, or another grader's
    fd, kept = tempfile.mkstemp(dir="/tmp", prefix="bystander-")
    os.close(fd)
    try:
        assert _variant(sealed)
        time.sleep(0.2)
        assert bystander.poll() is None, "grading a version killed a process it did not start"
        assert os.path.exists(kept), "grading a version deleted a file of the host's /tmp"
        assert not os.path.exists("/tmp/left-behind")
    finally:
        bystander.kill()
        os.unlink(kept)
