"""The web console in headless Chromium (Debian's chromium and chromium-driver, driven by
selenium): a real `conclave serve` with SmolLM2 behind it. Sign in with a token, ask a question,
read the streamed answer, open its trace and a citation's source passage, the conversation list
and the latest evaluation report; an auditor sees the audit browser with the chain's status, an
employee does not (and the API refuses them too). Screenshots of every stage are kept under
var/test-artefacts/console/.

What is asserted is what the platform controls (the stream completed with `[DONE]`, citations,
the steps of the trace, the cited passage, who sees what), not the 135M model's wording."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as visible
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import ARTEFACTS, CONCLAVE_BIN, REPO_ROOT

SHOTS = ARTEFACTS / "console"
QUESTION = "How many days of annual leave do I get?"
ANSWER_TIMEOUT_S = 240


def _token(server, user: str, secrets_used: set[str]) -> str:
    token = subprocess.run([CONCLAVE_BIN, "token", "--user", user], cwd=REPO_ROOT, env=server.env, check=True,
                           capture_output=True, text=True).stdout.strip()
    secrets_used.add(token)
    return token


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromium-driver are missing: run `make setup`"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1440,1000", "--lang=en-GB"):
        options.add_argument(argument)
    instance = webdriver.Chrome(service=Service(driver), options=options)
    instance.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield instance
    instance.quit()


def _shot(browser, name: str) -> None:
    browser.save_screenshot(str(SHOTS / f"{name}.png"))


def _wait(browser, seconds: float = 30) -> WebDriverWait:
    return WebDriverWait(browser, seconds)


def _sign_in(browser, server, token: str) -> None:
    # Forget the last session on a page of the same origin that runs no console script: cleared on the
    # console itself, the previous token's sign-in (still in flight from the page load) could save it
    # again before the reload, and the reload would sign that user back in.
    browser.get(f"{server.base_url}/healthz")
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{server.base_url}/console")
    field = _wait(browser).until(visible.visibility_of_element_located((By.ID, "token")))
    field.clear()
    field.send_keys(token)
    browser.find_element(By.ID, "sign-in").click()
    _wait(browser).until(visible.visibility_of_element_located((By.ID, "view-chat")))


def _visible(browser, element_id: str) -> bool:
    return browser.find_element(By.ID, element_id).is_displayed()


def test_a_bad_token_is_refused_on_the_sign_in_page(server, browser) -> None:
    browser.get(f"{server.base_url}/console")
    field = _wait(browser).until(visible.visibility_of_element_located((By.ID, "token")))
    field.send_keys("not-a-token")
    browser.find_element(By.ID, "sign-in").click()
    _wait(browser).until(visible.text_to_be_present_in_element((By.ID, "sign-in-error"), "not accepted"))
    assert not _visible(browser, "tabs")
    _shot(browser, "01-sign-in-refused")


def test_an_employee_asks_reads_the_streamed_answer_its_trace_and_a_cited_passage(server, browser, secrets_used) -> None:
    _sign_in(browser, server, _token(server, "u-employee", secrets_used))
    assert "u-employee" in browser.find_element(By.ID, "whoami").text
    # No audit browser for an employee: the tab is not shown.
    assert not _visible(browser, "tab-audit")
    picker = Select(browser.find_element(By.ID, "workflow"))
    assert {"conclave/full", "conclave/single"} <= {option.get_attribute("value") for option in picker.options}
    picker.select_by_value("conclave/full")
    box = browser.find_element(By.ID, "question")
    box.send_keys(QUESTION)
    browser.find_element(By.ID, "send").click()

    # The answer is read from the event stream; `complete` means the stream ended with [DONE].
    answer = _wait(browser, ANSWER_TIMEOUT_S).until(
        lambda b: b.find_element(By.CSS_SELECTOR, ".message.assistant[data-state]"))
    assert answer.get_attribute("data-state") == "complete", answer.text
    text = answer.find_element(By.CSS_SELECTOR, ".text").text
    assert text.strip()
    assert browser.find_element(By.ID, "conversation-id").text.startswith("conversation conv_")
    citations = answer.find_elements(By.CSS_SELECTOR, ".citation")
    assert citations, f"no citations under the answer: {text!r}"
    # The [n] markers in the text are links to the same citations.
    assert answer.find_elements(By.CSS_SELECTOR, ".text a.cite")
    _shot(browser, "02-answer")

    # The trace: one row per step on a time axis, the validator's verdict as a badge.
    answer.find_element(By.CSS_SELECTOR, ".show-trace").click()
    timeline = answer.find_element(By.CSS_SELECTOR, ".timeline")
    assert timeline.is_displayed()
    roles = [row.get_attribute("data-role") for row in timeline.find_elements(By.CSS_SELECTOR, ".step")]
    assert roles[0] == "planner" and "retriever" in roles and "validator" in roles and roles[-1] == "responder", roles
    assert timeline.find_elements(By.CSS_SELECTOR, ".verdict")
    bars = timeline.find_elements(By.CSS_SELECTOR, ".bar")
    assert all(bar.size["width"] > 0 for bar in bars)
    _shot(browser, "03-trace")

    # A citation opens its source document with the cited passage highlighted.
    first = citations[0]
    source = first.get_attribute("data-source")
    first.click()
    panel = _wait(browser).until(visible.visibility_of_element_located((By.ID, "source-panel")))
    assert panel.get_attribute("data-source") == source
    cited = _wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, "#source-passages .passage.cited"))
    assert cited.text.strip()
    if not source.startswith(("db:", "api:")):
        assert len(browser.find_elements(By.CSS_SELECTOR, "#source-passages .passage")) >= 1
        assert source in browser.find_element(By.ID, "source-meta").text
    _shot(browser, "04-citation")

    # The conversation list has it; opening it brings its messages back.
    browser.find_element(By.ID, "tab-conversations").click()
    item = _wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, "#conversation-list .conversation"))
    assert QUESTION in item.text
    _shot(browser, "05-conversations")
    item.click()
    _wait(browser).until(visible.visibility_of_element_located((By.ID, "view-chat")))
    messages = browser.find_elements(By.CSS_SELECTOR, "#messages .message")
    assert [m.get_attribute("class").split()[1] for m in messages] == ["user", "assistant"]
    assert QUESTION in messages[0].text

    # The latest evaluation report renders its tables; a report with figures shows them.
    browser.find_element(By.ID, "tab-evaluation").click()
    _wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#report table"))
    _shot(browser, "06-evaluation")
    picker = Select(browser.find_element(By.ID, "report-picker"))
    with_figures = [o.get_attribute("value") for o in picker.options if o.get_attribute("value").endswith("-analysis")]
    if with_figures:
        picker.select_by_value(with_figures[0])
        _wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#report figure img")
                             and all(b.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image)
                                     for image in b.find_elements(By.CSS_SELECTOR, "#report figure img")))
        _shot(browser, "06b-evaluation-figures")


def test_the_audit_browser_is_for_auditors_only(server, browser, secrets_used) -> None:
    employee = _token(server, "u-employee", secrets_used)
    request = urllib.request.Request(f"{server.base_url}/admin/audit", headers={"Authorization": f"Bearer {employee}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    assert json.loads(refused.value.read())["error"]["code"] == "forbidden"

    _sign_in(browser, server, _token(server, "u-auditor", secrets_used))
    assert _visible(browser, "tab-audit")
    browser.find_element(By.ID, "tab-audit").click()
    status = _wait(browser).until(visible.text_to_be_present_in_element((By.ID, "chain-status"), "Chain valid"))
    assert status
    rows = _wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr[data-seq]"))
    seqs = [int(row.get_attribute("data-seq")) for row in rows]
    assert seqs == sorted(seqs, reverse=True)
    # The employee's refused call above is on the record.
    assert any("denial" in row.text and "u-employee" in row.text for row in rows)
    rows[0].click()
    assert _visible(browser, "audit-detail")
    assert '"hash"' in browser.find_element(By.ID, "audit-detail").text
    _shot(browser, "07-audit")
