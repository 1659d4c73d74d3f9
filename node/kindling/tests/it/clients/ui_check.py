"""Drives Kindling's web UI in a real headless Chromium (Debian's /usr/bin/chromium, through
playwright's driver) as a person would: logs in, submits a batch from the form and watches it
reach `success` without reloading, reads its log; starts a session, runs a pyspark cell and a
SQL cell, completes a word with Tab, cancels a long cell, kills the session; logs in as a
viewer, who is offered no kill button and whose forged kill is refused; as an admin,
registers a cluster, changes it and removes it. Each step saves a
screenshot in SHOTS. Every page is checked with axe-core (labels, contrast, roles) and for
console errors, and the login form for keyboard order.

Usage: ui_check.py URL BATCH_FILE SHOTS; the users' passwords come from the environment
(KINDLING_USER_PASSWORD, KINDLING_VIEWER_PASSWORD, KINDLING_ADMIN_PASSWORD), never the command line. Prints one JSON
object; exits non-zero on any failure."""

import json
import os
import re
import sys

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect, sync_playwright

url, batch_file, shots = sys.argv[1], sys.argv[2], sys.argv[3]
SPARK = 180_000  # a driver starting on a busy 2-core machine
result = {"axe": {}, "console_errors": [], "shots": []}
axe = Axe()


def shot(page, name):
    path = os.path.join(shots, f"{name}.png")
    page.screenshot(path=path, full_page=True)
    result["shots"].append(name)


def check_a11y(page, name):
    found = axe.run(page, options={"runOnly": ["wcag2a", "wcag2aa"], "resultTypes": ["violations"]})
    result["axe"][name] = [
        {"id": v["id"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in found.response["violations"]
    ]


def login(page, user, password, role="user"):
    page.goto(f"{url}/ui/")
    expect(page.get_by_role("heading", name="Log in to Kindling")).to_be_visible()
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").first.click()
    expect(page.locator("#who-user")).to_have_text(f"{user} ({role})")


with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def on_console(msg):
        # A refused request shows as a failed resource: that is the API answering.
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            result["console_errors"].append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: result["console_errors"].append(str(e)))
    page.on("dialog", lambda d: d.accept())

    # The login form, in keyboard order.
    page.goto(f"{url}/ui/")
    expect(page.get_by_label("User name")).to_be_focused()
    order = []
    for _ in range(3):
        order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent"))
        page.keyboard.press("Tab")
    result["login_tab_order"] = order
    check_a11y(page, "login")
    shot(page, "01-login")
    # A wrong password: the API's message, not a blank page.
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password", exact=True).fill("wrong")
    page.get_by_role("button", name="Log in").first.click()
    expect(page.locator("#error")).to_be_visible()
    result["bad_login"] = page.locator("#error").inner_text()

    login(page, "alice", os.environ["KINDLING_USER_PASSWORD"])
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()

    # A batch from the form, followed to its end without reloading.
    page.get_by_text("Run something").click()
    form = page.locator("#submit-batch")
    form.get_by_label("Application file").fill(batch_file)
    form.get_by_label("Name").fill("ui-batch")
    form.get_by_label("Spark conf").fill(
        "spark.ui.enabled=false\nkindling.restart.policy=onFailure\nkindling.restart.maxAttempts=2"
    )
    shot(page, "02-submit-form")
    form.get_by_role("button", name="Submit batch").click()
    expect(page.locator("#job-title")).to_contain_text("ui-batch")
    result["batch_id"] = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#job-details .state")).to_have_text("success", timeout=SPARK)
    expect(page.locator("#job-log")).to_contain_text("ui-batch-done", timeout=30_000)
    page.get_by_label("Search").fill("ui-batch-done")
    result["log_search_marks"] = page.locator("#job-log mark").count()
    result["timeline"] = page.locator("#timeline li strong").all_inner_texts()
    result["queue_detail"] = page.locator("#job-details dt:text-is('Queue') + dd").inner_text()
    result["attempt_detail"] = page.locator("#job-details dt:text-is('Attempt') + dd").inner_text()
    check_a11y(page, "job")
    shot(page, "03-batch-succeeded")

    # The jobs table shows it, live.
    page.goto(f"{url}/ui/#/jobs")
    row = page.locator(f'#jobs tr[data-job="{result["batch_id"]}"]')
    expect(row.locator(".state")).to_have_text("success")
    # Search by name, a filter the server applies; the address keeps it.
    # (Nothing first, so the table the search then fills is surely the search's.)
    page.locator("#filter-name").fill("no-such-job")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#jobs tbody")).to_contain_text("No jobs.")
    page.locator("#filter-name").fill("UI-BAT")
    page.get_by_role("button", name="Filter").click()
    found = page.locator("#jobs tbody tr[data-job]")
    expect(found).to_have_count(1)
    result["searched"] = found.all_inner_texts()
    result["search_address"] = page.url.split("#", 1)[1]
    page.goto(f"{url}/ui/#/jobs")
    expect(row.locator(".state")).to_have_text("success")
    check_a11y(page, "jobs")
    shot(page, "04-jobs")

    # A session: a pyspark cell, a SQL cell, Tab completion, a cancelled cell.
    page.get_by_text("Run something").click()
    page.locator("#start-session").get_by_role("button", name="Start session").click()
    expect(page.locator("#session-state .state")).to_have_text("idle", timeout=SPARK)
    result["session_id"] = int(page.url.split("/jobs/")[1].split("/")[0])
    code = page.locator("#code")

    def run_cell(kind, text, index, state="available"):
        page.locator("#cell-kind").select_option(kind)
        code.fill(text)
        page.locator("#run").click()
        cell = page.locator("#history .cell").nth(index)
        expect(cell.locator(".state")).to_have_text(state, timeout=60_000)
        return cell

    first = run_cell("pyspark", "spark.range(7).count()", 0)
    result["pyspark_text"] = first.locator(".out").inner_text()
    second = run_cell("sql", "SELECT 1 AS one, 'a' AS letter", 1)
    result["sql_headers"] = second.locator("table th").all_inner_texts()
    result["sql_cells"] = second.locator("table td").all_inner_texts()
    # An error, with its traceback.
    failed = run_cell("pyspark", "1 / 0", 2)
    result["error_text"] = failed.locator(".out.err").inner_text()
    code.fill("spark.rang")
    code.press("End")
    code.press("Tab")
    expect(code).to_have_value(re.compile(r"^spark\.range\(?$"), timeout=30_000)
    result["completed"] = code.input_value()
    third = run_cell("pyspark", "import time\ntime.sleep(120)", 3, state="running")
    third.get_by_role("button", name="Cancel").click()
    expect(third.locator(".state")).to_have_text("cancelled", timeout=60_000)
    check_a11y(page, "console")
    shot(page, "05-console")

    # Kill the session from its page, after a confirmation.
    page.goto(f"{url}/ui/#/jobs/{result['session_id']}")
    page.locator("#kill").click()
    expect(page.locator("#job-details .state").first).to_have_text("killed", timeout=60_000)
    shot(page, "06-session-killed")

    page.goto(f"{url}/ui/#/clusters")
    expect(page.locator("#clusters tbody tr").first).to_be_visible()
    check_a11y(page, "clusters")
    shot(page, "07-clusters")
    page.goto(f"{url}/ui/#/nodes")
    expect(page.locator("#cluster-summary")).to_contain_text("leader")
    check_a11y(page, "nodes")
    shot(page, "08-nodes")
    page.locator("#logout").click()
    expect(page.get_by_role("heading", name="Log in to Kindling")).to_be_visible()

    # A viewer: no kill button, and a forged kill is refused.
    login(page, "vic", os.environ["KINDLING_VIEWER_PASSWORD"], "viewer")
    result["viewer_run_form"] = page.get_by_text("Run something").count()
    page.goto(f"{url}/ui/#/jobs/{result['batch_id']}")
    expect(page.locator("#job-details .state")).to_have_text("success")
    result["viewer_kill_buttons"] = page.locator("#kill").count()
    shot(page, "09-viewer")
    forged = "async (id) => { const r = await fetch(`/api/v1/jobs/${id}/kill`, {method: 'POST', headers: %s}); return [r.status, (await r.json()).msg]; }"
    result["forged_kill"] = page.evaluate(forged % "{'X-Requested-By': 'forged'}", result["batch_id"])
    result["cross_site_kill"] = page.evaluate(forged % "{}", result["batch_id"])
    page.goto(f"{url}/ui/#/clusters")
    expect(page.locator("#clusters tbody tr").first).to_be_visible()
    result["viewer_cluster_forms"] = page.locator("#add-cluster").count()
    page.locator("#logout").click()

    # An admin registers a cluster, changes its capacity and removes it.
    login(page, "root", os.environ["KINDLING_ADMIN_PASSWORD"], "admin")
    page.goto(f"{url}/ui/#/clusters")
    page.locator("#add-cluster").click()
    form = page.locator("#cluster-form")
    form.get_by_label("Name").fill("lab")
    form.get_by_label("Type").select_option("standalone")
    form.get_by_label("Connection").fill("restUrl=http://127.0.0.1:6066\nwebUiUrl=http://127.0.0.1:8080")
    form.get_by_label("Max drivers").fill("2")
    check_a11y(page, "cluster_form")
    shot(page, "10-register-cluster")
    form.get_by_role("button", name="Register cluster").click()
    lab = page.locator("#clusters tbody tr", has_text="lab")
    expect(lab).to_contain_text("2 drivers")
    page.locator('[data-edit="lab"]').click()
    page.locator("#cluster-form").get_by_label("Max drivers").fill("3")
    page.locator("#cluster-form").get_by_role("button", name="Save changes").click()
    expect(lab).to_contain_text("3 drivers")
    result["cluster_changed"] = lab.inner_text()
    page.locator('[data-remove="lab"]').click()
    expect(page.locator("#clusters tbody tr", has_text="lab")).to_have_count(0)
    result["cluster_removed"] = True
    browser.close()

print(json.dumps(result))
