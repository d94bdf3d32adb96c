"""Safe to expose, in a real browser: `sgpo dashboard --token T` (the same check a dashboard bound beyond
loopback makes with its generated token) shows a session without the token, or with a wrong one, one line and
no page, no widget; the right token opens every page; a local dataset path outside the --allow-root folders is
refused in one line. Screenshots go to test-artifacts/access-*.png."""

from __future__ import annotations

import pytest

from bench.browser import browser_page, serve
from bench.synthetic import fill_groups, fill_profile, fill_run
from sgpo.store import Store
from tests.conftest import ROOT, require_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "browser-test-token-0123456789abcdef"
PAGES = ("", "audit", "plan", "train", "rollouts", "queries", "compare")
INPUTS = "input, textarea, button:not([data-testid=stBaseButton-header]), [role=combobox], [data-testid=stSidebarNav]"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    require_browser()
    d = tmp_path_factory.mktemp("access")
    s = Store(d / "sgpo.db")
    p = fill_profile(s, "p", n=40)
    fill_run(s, "r", "sgpo", steps=10, profile_id=p["id"])
    fill_groups(s, "r", 10, per_step=8, group_size=4, profile="p")
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.jsonl"  # not in the store's folder nor the checkout
    outside.write_text('{"prompt": "1+1=", "answer": "2"}\n')
    return {"db": d / "sgpo.db", "outside": outside}


@pytest.fixture(scope="module")
def server(setup):
    with serve(setup["db"], args=("--token", TOKEN)) as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page() as page:
        yield page
        assert not page.errors, page.errors


def visit(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("[data-testid=stAppViewContainer]")
    page.wait_for_selector("[data-testid=stAlert], h1")
    page.wait_for_timeout(1500)  # anything a page would add has arrived


@pytest.mark.parametrize(("given", "said"), [(None, "needs its access token"), ("wrong-token", "Wrong access token")])
def test_without_the_right_token_every_page_is_one_line_and_no_widget(page, server, given, said):
    for path in PAGES:
        visit(page, f"{server}/{path}" + (f"?token={given}" if given else ""))
        alerts = page.locator("[data-testid=stAlert]").all_inner_texts()
        assert len(alerts) == 1 and said in alerts[0], (path, alerts)
        assert page.locator("h1").count() == 0, path  # no page title: no page ran
        assert page.locator(INPUTS).count() == 0, (path, page.locator(INPUTS).count())
    page.screenshot(path=str(ARTIFACTS / f"access-{'no' if given is None else 'wrong'}-token.png"), full_page=True)


def test_the_right_token_opens_every_page_and_the_session_stays_in(page, server):
    visit(page, f"{server}/?token={TOKEN}")
    assert page.locator("h1").first.inner_text() == "Data & profiles"
    for title in ("Audit", "Plan", "Train", "Rollouts", "Queries", "Compare"):  # in-app navigation: no token in the URL
        page.locator("[data-testid=stSidebarNav] a", has_text=title).first.click()
        page.wait_for_function(
            "(t) => [...document.querySelectorAll('h1')].some(h => h.innerText.startsWith(t))", arg=title
        )
        assert not page.locator("[data-testid=stException]").count(), title
    page.screenshot(path=str(ARTIFACTS / "access-right-token.png"), full_page=True)
    for path in PAGES:  # and a URL of each page, with the token, opens it in a new session
        visit(page, f"{server}/{path}?token={TOKEN}")
        assert page.locator("h1").count() >= 1, path


def test_a_local_dataset_outside_the_allowed_folders_is_refused_in_one_line(page, server, setup):
    visit(page, f"{server}/?token={TOKEN}")
    page.locator(".st-key-ds_source button", has_text="local file").click()
    box = page.locator(".st-key-ds_path input")
    box.wait_for()
    box.fill(str(setup["outside"]))
    box.press("Enter")
    refusal = page.get_by_text("is outside the folders this dashboard may read").first
    try:  # refused as soon as it is typed (the Data page's form checks it), else when profiling starts
        refusal.wait_for(timeout=5_000)
    except Exception:
        page.locator(".st-key-start_profile button").click()
        refusal.wait_for()
    assert "--allow-root" in refusal.inner_text() and "\n" not in refusal.inner_text().strip()
    assert not [p for p in Store(setup["db"]).profiles() if p["name"] != "p"]  # nothing started
    page.screenshot(path=str(ARTIFACTS / "access-outside-root.png"), full_page=True)
