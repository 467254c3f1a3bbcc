"""Opens report pages in a real headless Chromium (driven by Playwright, pointed at the system's
browser) and checks what a reviewer relies on: the page draws without a console error, the
verdict and the violating step are visible, selecting a step explains it, and the filter by user
hides the other users' lanes and ledger rows and brings them back.

usage: browser_check.py CHROMIUM PAGE.html... [--screenshot PAGE.html OUT.png]
Exit 0 when every page passes; 1 with one line per problem otherwise.
"""

import pathlib
import sys

from playwright.sync_api import sync_playwright

MAX_BYTES = 1_000_000
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def visible_lanes(page):
    return page.eval_on_selector_all(
        "#lane-labels .lane-label[data-lane]", "els => els.map(e => e.textContent)")


def check(page, path):
    problems = []
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append("request failed: " + r.url))
    size = path.stat().st_size
    if size >= MAX_BYTES:
        problems.append(f"{size} bytes, over the {MAX_BYTES} limit")
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    verdict = page.locator("#verdict h1")
    if not verdict.is_visible():
        problems.append("the verdict is not visible")
    failed = page.locator("#verdict.fail").count() == 1
    data = page.evaluate("JSON.parse(document.getElementById('data').textContent)")
    if data["violation"] is not None:
        n = data["violation"]
        mark = page.locator("#canvas .step.violation")
        if mark.count() != 1:
            problems.append(f"no mark for the violating step {n}")
        else:
            box = mark.bounding_box()
            canvas = page.locator("#canvas").bounding_box()
            inside = box and canvas and canvas["x"] <= box["x"] and box["x"] + box["width"] <= canvas["x"] + canvas["width"]
            if not inside:
                problems.append(f"the violating step {n} is drawn outside the visible timeline")
        details = page.locator("#details").inner_text()
        if f"step {n}" not in details or "violating step" not in details:
            problems.append(f"the details panel does not explain step {n}: {details!r}")
        if "The rule" not in page.locator("#verdict").inner_text():
            problems.append("the broken rule is not explained")
    elif failed and "VIOLATION" in verdict.inner_text():
        problems.append("a violation verdict without a violating step in the data")
    # Selecting another step shows it.
    steps = page.locator("#canvas .step")
    if steps.count() > 0:
        first = steps.first
        n = first.get_attribute("data-step")
        first.click()
        if f"step {n} " not in page.locator("#details").inner_text() + " ":
            problems.append(f"clicking step {n} did not show it")
    # The filter: one user alone hides every other user's lanes and ledger rows.
    users = data["users"]
    everything = visible_lanes(page)
    if len(users) >= 2:
        keep = data["involved"][0] if data["involved"] else 0
        page.click("#users-none")
        page.check(f"#user-{keep}")
        lanes = visible_lanes(page)
        others = [i for i in range(len(data["lanes"])) if data["lanes"][i]["kind"] != "world"
                  and keep not in data["lanes"][i]["users"] and data["lanes"][i]["users"]]
        hidden = {data["lanes"][i]["label"] for i in others}
        if hidden & set(lanes):
            problems.append(f"filtered to {users[keep]}, lanes of others still shown: {sorted(hidden & set(lanes))}")
        if others and len(lanes) >= len(everything):
            problems.append(f"filtered to {users[keep]}, no lane was hidden")
        rows = page.eval_on_selector_all("#ledger tbody tr", "rs => rs.map(r => r.dataset.user)")
        if any(r != users[keep] for r in rows):
            problems.append(f"filtered to {users[keep]}, the ledger still lists {sorted(set(rows))}")
        page.click("#users-all")
        if visible_lanes(page) != everything:
            problems.append("'all' did not bring every lane back")
    if errors:
        problems.append("console errors: " + "; ".join(errors))
    return problems


def main(argv):
    screenshot = None
    if "--screenshot" in argv:
        i = argv.index("--screenshot")
        screenshot = (pathlib.Path(argv[i + 1]), pathlib.Path(argv[i + 2]))
        argv = argv[:i] + argv[i + 3:]
    chromium, pages = argv[1], [pathlib.Path(p) for p in argv[2:]]
    if not pages and not screenshot:
        print("browser check: no pages given")
        return 1
    failed = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        for path in pages:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            problems = check(page, path)
            page.close()
            if problems:
                failed += 1
                for problem in problems:
                    print(f"FAIL {path.name}: {problem}")
        if screenshot:
            src, out = screenshot
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(src.resolve().as_uri())
            page.wait_for_selector("body[data-ready=true]")
            page.screenshot(path=str(out), full_page=False)
            print(f"screenshot of {src.name} written to {out}")
        browser.close()
    print(f"browser check: {len(pages) - failed} of {len(pages)} pages pass in {chromium}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
