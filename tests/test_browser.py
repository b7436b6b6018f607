"""The student's path in a real browser: JupyterLab opens, runs and validates a released notebook.

One test walks the path a student and an instructor take, in headless Chromium (Debian's
/usr/bin/chromium, driven by Playwright; never `playwright install`):

    open release/01_attention -> Run All shows the bug -> Validate fails -> type the fix ->
    Run All is clean -> Validate says Success -> Assignment List and formgrader list the course.

Every wait is bounded. Each step leaves a screenshot in build/browser/ (the path is printed
at the end of the pytest run); a failing step says which one and keeps its screenshot.
Without chromium or playwright the test skips with the reason, unless COURSE_REQUIRE_BROWSER=1
(set by .ci/run), where a skip would hide a broken student path, so it fails instead.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, SCREENSHOTS

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ASSIGNMENT = "01_attention"
NOTEBOOK = f"release/{ASSIGNMENT}/attention.ipynb"
SHOTS = ROOT / "build" / "browser"
WAIT_MS = 60_000          # the longest any single browser wait may take
SERVER_START_S = 90       # jupyter lab answering /api/status
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
KERNEL_IDLE = ("() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
               ".some(e => e.textContent.trim().endsWith('| Idle'))")
LAST_CELL_RAN = ("last => /\\[\\d+\\]/.test(last.textContent) && ![...document.querySelectorAll("
                 "'.jp-InputPrompt')].some(e => e.textContent.includes('*'))")


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None when it can."""
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.txt)"
    return None


def require_browser() -> None:
    reason = browser_missing()
    if reason is None:
        return
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; COURSE_REQUIRE_BROWSER=1 says this machine must run the browser test")
    pytest.skip(reason)


def test_a_missing_browser_skips_on_a_laptop_but_fails_in_ci(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.delenv("COURSE_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        require_browser()
    monkeypatch.setenv("COURSE_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="must run the browser test"):
        require_browser()


# ---------------------------------------------------------------------------- the server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_jupyter_config(config_dir: Path) -> None:
    """No news pop-up; every cell in the DOM (JupyterLab 4 otherwise renders only the cells in
    view, and the test finds cells by their text)."""
    settings = config_dir / "lab" / "user-settings" / "@jupyterlab"
    for plugin, values in [("apputils-extension/notification", {"fetchNews": "false"}),
                           ("notebook-extension/tracker", {"windowingMode": "none"})]:
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@contextlib.contextmanager
def jupyter_lab(course: Path, tmp: Path):
    """`jupyter lab` in the course folder on a free loopback port; yields (base url, token)."""
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"), "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    private_jupyter_config(tmp / "jupyter-config")
    log = (tmp / "jupyter-lab.log").open("w")
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--ServerApp.token={token}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    server = subprocess.Popen(command, cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                raise AssertionError(f"jupyter lab exited with {server.returncode}; log: {tmp / 'jupyter-lab.log'}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"jupyter lab did not answer within {SERVER_START_S} s; "
                                     f"log: {tmp / 'jupyter-lab.log'}")
            time.sleep(0.25)
        yield base, token
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)
        log.close()


# ---------------------------------------------------------------------------- the browser

class Student:
    """What a student does in JupyterLab, one bounded step at a time, each with a screenshot."""

    def __init__(self, page, shots: Path):
        self.page, self.shots, self.taken, self.seconds = page, shots, 0, {}

    @contextlib.contextmanager
    def step(self, name: str):
        self.taken += 1
        shot = self.shots / f"{self.taken:02d}-{name.replace(' ', '-')}.png"
        start = time.monotonic()
        try:
            yield
        except Exception as err:
            failed = shot.with_name(f"{shot.stem}-FAILED.png")
            with contextlib.suppress(Exception):
                self.page.screenshot(path=failed, full_page=True)
            raise AssertionError(f"browser step {self.taken} '{name}' failed ({type(err).__name__}: "
                                 f"{str(err).splitlines()[0] if str(err) else ''}); screenshot: {failed}") from err
        self.seconds[name] = round(time.monotonic() - start, 1)
        self.page.screenshot(path=shot)

    def menu(self, menu: str, item: str) -> None:
        self.page.locator(".lm-MenuBar-item", has_text=menu).click()
        self.page.get_by_role("menuitem", name=item, exact=True).click()

    def wait_idle(self) -> None:
        self.page.wait_for_function(KERNEL_IDLE, timeout=WAIT_MS)

    def cell(self, text: str):
        """The one cell whose source contains `text`."""
        cells = self.page.locator(".jp-Notebook .jp-Cell").filter(
            has=self.page.locator(".jp-InputArea-editor", has_text=text))
        assert cells.count() == 1, f"expected one cell containing {text!r}, found {cells.count()}"
        return cells.first

    def type_into(self, text: str, new_source: str) -> None:
        """Replace a cell's source by typing, as a student does: select the cell, Enter to edit,
        select all, type."""
        cell = self.cell(text)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Enter")
        cell.locator(".cm-editor.cm-focused").wait_for(timeout=WAIT_MS)
        self.page.keyboard.press("Control+a")
        self.page.keyboard.insert_text(new_source)
        self.page.keyboard.press("Escape")

    def run_all(self) -> None:
        self.menu("Run", "Run All Cells")

    def errors(self) -> list[str]:
        return [e.inner_text() for e in self.page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all()
            if "Error" in e.inner_text()]

    def validate(self) -> tuple[str, str]:
        """Click nbgrader's Validate button; return the dialog's (class, text) and close it."""
        self.page.locator(".jp-NotebookPanel-toolbar [data-jp-item-name=runAll] jp-button").click()
        message = self.page.locator(".jp-Dialog #validation-message")
        message.wait_for(timeout=3 * WAIT_MS)  # validate runs the whole notebook
        result = message.get_attribute("class") or "", message.inner_text()
        self.page.screenshot(path=self.shots / f"{self.taken:02d}-dialog.png")
        self.page.locator(".jp-Dialog .jp-Dialog-button").last.click()
        message.wait_for(state="detached", timeout=WAIT_MS)
        return result



def test_a_failing_step_says_which_and_keeps_its_screenshot(tmp_path):
    class Page:  # stands in for Playwright's page: only screenshots are needed here
        def screenshot(self, path, full_page=False):
            Path(path).write_bytes(b"png")

    student = Student(Page(), tmp_path)
    with student.step("open the notebook"):
        pass
    with pytest.raises(AssertionError, match=r"browser step 2 'validate' failed \(TimeoutError: Timeout 60000ms"):
        with student.step("validate"):
            raise TimeoutError("Timeout 60000ms exceeded.\nCall log: ...")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01-open-the-notebook.png", "02-validate-FAILED.png"]

def author_answer(cell: str) -> str:
    """What a student types for one answer cell: the author's fix, markers gone."""
    from transformer_debug.authoring import builds
    from transformer_debug.authoring.markers import solution
    where, source = builds.answer_cell(ROOT, ASSIGNMENT, cell)
    return solution(source, frozenset(), where)


def test_a_student_runs_validates_and_fixes_a_notebook_in_jupyterlab(tmp_path, monkeypatch, request):
    require_browser()
    from playwright.sync_api import sync_playwright

    from transformer_debug.authoring.builds import copy_course, nbgrader
    from transformer_debug.authoring.catalog import Catalog

    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    request.config.stash[SCREENSHOTS] = SHOTS
    started = time.monotonic()
    course = copy_course(ROOT, tmp_path / "course")
    shutil.copytree(ROOT / "release", course / "release")
    monkeypatch.setenv("NBGRADER_EXCHANGE", str(tmp_path / "exchange"))
    assignments = Catalog.load(course).assignments
    nbgrader(course, "release_assignment", ASSIGNMENT)  # what the Assignment List shows

    prepared = time.monotonic()
    with jupyter_lab(course, tmp_path) as (base, token), sync_playwright() as playwright:
        serving = time.monotonic()
        browser = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            student = Student(page, SHOTS)

            with student.step("open the released notebook"):
                page.goto(f"{base}/lab/tree/{NOTEBOOK}?reset&token={token}")
                page.locator(".jp-Notebook .jp-Cell").first.wait_for()
                student.wait_idle()

            with student.step("run all shows the bug"):
                student.run_all()
                page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                             has_text="Error").first.wait_for(timeout=3 * WAIT_MS)
                student.wait_idle()
                [error, *_] = student.errors()
                assert "view size is not compatible" in error, \
                    f"expected the planted merge-heads crash, the first error reads: {error[:300]}"

            with student.step("a visible test fails with its message"):
                test = student.cell("The layer runs and keeps the shape")
                test.locator(".jp-InputPrompt").click()
                page.keyboard.press("Control+Enter")  # run this cell only, as a student checks one test
                error = test.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
                error.wait_for()
                assert "view size is not compatible" in error.inner_text(), error.inner_text()[:300]
                test.scroll_into_view_if_needed()

            with student.step("validate the untouched release"):
                kind, text = student.validate()
                assert "validation-failed" in kind, f"the untouched release passed validation: {text[:300]}"
                assert "failed" in text and "RuntimeError" in text, f"the dialog should show the failing test: {text[:300]}"

            with student.step("type the fix"):
                student.type_into("class MultiHeadAttention", author_answer("attention-code"))
                student.type_into("def test_attention", author_answer("your-test"))
                student.type_into("YOUR ANSWER HERE", author_answer("defect-report"))
                page.keyboard.press("Control+s")
                page.wait_for_function("() => !document.querySelector('.lm-TabBar-tab.jp-mod-dirty')")

            with student.step("run all is clean"):
                last_prompt = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").last
                student.run_all()
                page.wait_for_function(LAST_CELL_RAN, arg=last_prompt.element_handle(), timeout=3 * WAIT_MS)
                student.wait_idle()
                assert not student.errors(), f"errors after the fix: {student.errors()[0][:300]}"

            with student.step("validate the fix"):
                kind, text = student.validate()
                assert "validation-success" in kind and "Success" in text, f"validation after the fix: {text[:500]}"

            with student.step("assignment list"):
                student.menu("Nbgrader", "Assignment List")
                released = page.locator("#released_assignments_list")
                released.get_by_text(ASSIGNMENT).wait_for()
                assert "transformer-debug" in released.inner_text()

            with student.step("formgrader"):
                student.menu("Nbgrader", "Formgrader")
                frame = page.frame_locator("iframe[src*='formgrader']")
                for assignment in assignments:  # released or not, the instructor sees each one
                    frame.locator("td", has_text=assignment).first.wait_for()

            seconds = {"copy and release the course": round(prepared - started, 1),
                       "start jupyter lab": round(serving - prepared, 1), **student.seconds}
            (SHOTS / "seconds.json").write_text(json.dumps(seconds, indent=1) + "\n")
        finally:
            browser.close()
