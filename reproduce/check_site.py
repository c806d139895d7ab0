"""Check the built course site in a headless Chromium: pages, figures, MathJax, internal links.

```bash
make docs                                            # or: mkdocs build --strict -d /tmp/site
python reproduce/check_site.py site                  # every page, every internal link
python reproduce/check_site.py site --shots /tmp/site-shots   # and four screenshots
```

What ``mkdocs build --strict`` cannot see, because it needs a browser: the site is served
from ``SITE_DIR`` on localhost and every HTML page of it (every ``*.html`` file, plus any page
reached by a link) is loaded in Chromium, which must show

- **the page renders**: a non-empty ``<title>`` and an ``<h1>``; no uncaught exception, no
  ``console.error``, no error in the browser's log (a resource that fails to load is one);
- **offline**: no request leaves ``127.0.0.1`` (the site is offline by construction,
  see ``docs/hooks.py``) and no request of the site answers an HTTP error;
- **figures**: every ``<img>`` is loaded with ``naturalWidth > 0``;
- **MathJax**: where a page has math (``.arithmatex`` spans of the markdown pages, ``$...$``
  in the markdown cells of the notebooks), MathJax is loaded from the local copy, every
  ``.arithmatex`` element holds a rendered ``mjx-container``, no ``mjx-merror`` (a TeX error)
  and no ``$`` pair left as text in a notebook's markdown;
- **search**: the search box of the home page finds pages for ``frontier``;
- **internal links**: every ``<a href>`` into the site answers 200 and, when it has a
  ``#fragment``, the target page has an element with that id (read from the loaded page).

Links that leave the site are counted, never fetched. The browser is driven through the
DevTools protocol over a pipe (``--remote-debugging-pipe``), so this needs Python's standard
library and a Chromium binary, nothing else. Without Chromium it prints ``SKIP`` and exits 0.

Exit status: 0 when every check passes (or SKIP), 1 when one fails (each failure is printed
with its page), 2 on a usage error (no such site directory).

It is a maintainer's tool, not part of the test suite (it needs Chromium and takes a minute).
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

#: Chromium flags: headless, no sandbox (containers), nothing that talks to the network by
#: itself (the check that no request leaves localhost must only see the pages' requests)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--remote-debugging-pipe",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: the screenshots of ``--shots``: file name, page (a path prefix under the site root), an
#: optional CSS selector scrolled into view before the shot (None: the top of the page), and
#: whether that element is clicked first (the figure zoom of docs/javascripts/figure-zoom.js,
#: which must then show its overlay)
SHOTS = (
    ("home.png", "index.html", None, False),
    ("notebook-02.png", "notebooks/02_", None, False),
    ("notebook-02-figure.png", "notebooks/02_", ".jp-OutputArea-output img", False),
    ("notebook-02-zoom.png", "notebooks/02_", ".jp-OutputArea-output img.dslib-zoomable", True),
    ("paper-notes.png", "paper-notes/", None, False),
    ("api-uct.png", "api/dslib.uct/", None, False),
)

#: run in the page once it has loaded: waits for MathJax and the images, then reports what
#: the checks need (an async function, awaited by Runtime.evaluate)
PAGE_PROBE = r"""
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  for (const img of document.images) img.loading = "eager";
  const hasMath = document.querySelector(".arithmatex") !== null;
  if (window.MathJax) {
    for (let i = 0; i < 200 && !(MathJax.startup && MathJax.startup.promise); i++) await sleep(25);
    if (MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  }
  await Promise.all([...document.images].map((img) => img.complete ? null :
    new Promise((r) => { img.addEventListener("load", r); img.addEventListener("error", r);
                         setTimeout(r, 10000); })));
  if (document.fonts) await document.fonts.ready;
  const arith = [...document.querySelectorAll(".arithmatex")];
  // a $...$ or $$...$$ left as text in a notebook's markdown: MathJax did not typeset it
  const leftover = [];
  for (const md of document.querySelectorAll(".jp-RenderedMarkdown")) {
    const walker = document.createTreeWalker(md, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (n.parentElement.closest("code, pre, mjx-container")) continue;
      const m = n.textContent.match(/\$[^$\s][^$]*\$/);
      if (m) leftover.push(m[0].slice(0, 60));
    }
  }
  return {
    title: document.title,
    h1: (document.querySelector("h1") || {}).textContent || "",
    images: [...document.images].map((img) => ({
      src: img.currentSrc.startsWith("data:") ? img.currentSrc.slice(0, 40) + "..."
                                              : img.currentSrc,
      naturalWidth: img.naturalWidth, complete: img.complete })),
    mathjax: !!(window.MathJax && MathJax.version),
    hasMath,
    arithmatex: arith.length,
    arithmatexRendered: arith.filter((e) => e.querySelector("mjx-container")).length,
    mjxContainers: document.querySelectorAll("mjx-container").length,
    mjxErrors: [...document.querySelectorAll("mjx-merror")].map((e) =>
      (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 80)),
    leftoverTex: leftover,
    links: [...document.querySelectorAll("a[href]")].map((a) => ({
      raw: a.getAttribute("href"), href: a.href })),
    ids: [...document.querySelectorAll("[id]")].map((e) => e.id)
      .concat([...document.querySelectorAll("a[name]")].map((e) => e.name)),
  };
})()
"""


#: a word every build of the site has pages for: the search box must find it (the search
#: plugin builds its index offline and runs it in a web worker, a thing only a browser runs)
SEARCH_WORD = "frontier"
#: types SEARCH_WORD into Material's search box; answers the number of results and their header
SEARCH_PROBE = r"""
(async () => {
  const input = document.querySelector(".md-search__input");
  if (!input) return {n: 0, meta: "no search box"};
  input.focus();
  input.value = WORD;
  for (const t of ["focus", "input", "keyup"]) input.dispatchEvent(new Event(t, {bubbles: true}));
  for (let i = 0; i < 200; i++) {
    const n = document.querySelectorAll(".md-search-result__item").length;
    if (n) return {n, meta: document.querySelector(".md-search-result__meta").textContent};
    await new Promise((r) => setTimeout(r, 50));
  }
  return {n: 0, meta: (document.querySelector(".md-search-result__meta") || {}).textContent};
})()
"""


class CDP:
    """A DevTools-protocol client over Chromium's ``--remote-debugging-pipe``.

    Chromium reads commands from its fd 3 and writes replies and events to its fd 4, each
    message a JSON object ended by a NUL byte. One thread: :meth:`call` writes a command and
    reads until its reply, keeping the events it reads on the way in :attr:`events`.
    """

    def __init__(self, chromium: str, user_data_dir: str, log):
        to_child_r, self._w = os.pipe()
        self._r, from_child_w = os.pipe()

        def child_fds():  # runs in the child before exec: the pipe ends become fds 3 and 4
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            # close_fds=False: subprocess would close fds 3 and 4 after child_fds; the other
            # descriptors of this process are non-inheritable, closed at exec anyway
            preexec_fn=child_fds, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read_message(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the DevTools pipe (exit code "
                                       f"{self.proc.poll()}); see its log")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(max(0.0, deadline - time.monotonic()))
            if reply is None:
                raise TimeoutError(f"{method}: no reply from chromium in {timeout:.0f} s")
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float) -> dict | None:
        """The first event ``method`` (already read or still to come), or None at timeout."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for ev in self.events[seen:]:
                if ev.get("method") == method:
                    return ev
            seen = len(self.events)
            msg = self._read_message(max(0.0, deadline - time.monotonic()))
            if msg is None:
                return None
            self.events.append(msg)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._w)
        os.close(self._r)


@dataclass
class PageResult:
    """What one page showed in the browser."""

    path: str  #: site-relative path of the HTML file (``notebooks/02_global_frontier/index.html``)
    probe: dict = field(default_factory=dict)  #: PAGE_PROBE's answer
    errors: list[str] = field(default_factory=list)  #: the failed checks, one line each


def find_chromium(explicit: str | None) -> str | None:
    """The Chromium binary: ``--chromium``, else ``$CHROMIUM``, else the first on PATH."""
    for name in (explicit, os.environ.get("CHROMIUM"), *CHROMIUM_NAMES):
        if name and (path := shutil.which(name)):
            return path
    return None


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``site`` on a free localhost port in a daemon thread; returns (server, base URL)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # one line per request would drown the report
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            # the browser drops a connection when it leaves a page mid-download: not an error
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    handler = functools.partial(Quiet, directory=str(site))
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def page_key(url: str, base: str) -> str | None:
    """Site-relative path of the file a URL of the site serves (``a/`` -> ``a/index.html``);
    None for a URL outside the site."""
    if not url.startswith(base):
        return None
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)[1:]
    return path + "index.html" if path == "" or path.endswith("/") else path


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def console_errors(events: list[dict], base: str) -> list[str]:
    """The errors among the DevTools events of one page load: exceptions, console.error,
    browser log errors, failed or HTTP-error requests, requests that leave the site."""
    out = []
    for ev in events:
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = (d.get("exception") or {}).get("description") or d.get("text")
            out.append(f"uncaught exception: {text.splitlines()[0][:200]}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            out.append(f"console.{p['type']}: {args[:200]}")
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            e = p["entry"]
            out.append(f"browser log ({e['source']}): {e['text'][:200]} {e.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if not url.startswith((base, "data:", "blob:", "about:")):
                out.append(f"request leaves the site: {url[:200]}")
        elif method == "Network.responseReceived" and p["response"]["status"] >= 400:
            out.append(f"HTTP {p['response']['status']}: {p['response']['url'][:200]}")
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            out.append(f"request failed: {p.get('errorText')} ({p.get('type')})")
    return out


def check_probe(probe: dict) -> list[str]:
    """The page checks on PAGE_PROBE's answer: title, h1, images, MathJax."""
    out = []
    if not probe["title"].strip():
        out.append("no <title>")
    if not probe["h1"].strip():
        out.append("no <h1>")
    for img in probe["images"]:
        if not img["complete"] or img["naturalWidth"] == 0:
            out.append(f"image not loaded (naturalWidth {img['naturalWidth']}): {img['src']}")
    math = probe["hasMath"] or probe["leftoverTex"] or probe["mjxContainers"]
    if math and not probe["mathjax"]:
        out.append("the page has math but MathJax is not loaded")
    if probe["arithmatexRendered"] < probe["arithmatex"]:
        out.append(f"MathJax rendered {probe['arithmatexRendered']} of {probe['arithmatex']} "
                   ".arithmatex elements")
    out += [f"MathJax TeX error: {e}" for e in probe["mjxErrors"]]
    out += [f"math left as text in a notebook cell: {t}" for t in probe["leftoverTex"]]
    return out


def load(cdp: CDP, session: str, url: str, timeout: float) -> tuple[dict, list[dict]]:
    """Navigate to ``url``, wait for its load event and PAGE_PROBE; (probe, events)."""
    cdp.events.clear()
    nav = cdp.call("Page.navigate", {"url": url}, session)
    if nav.get("errorText"):
        raise RuntimeError(f"navigation failed: {nav['errorText']}")
    if cdp.wait_event("Page.loadEventFired", timeout) is None:
        raise TimeoutError(f"no load event in {timeout:.0f} s")
    res = cdp.call("Runtime.evaluate", {"expression": PAGE_PROBE, "awaitPromise": True,
                                        "returnByValue": True}, session, timeout=timeout)
    if "exceptionDetails" in res:
        raise RuntimeError(f"probe failed: {res['exceptionDetails'].get('text')}")
    time.sleep(0.2)  # late console messages (a failing web worker) arrive after load
    cdp.call("Runtime.evaluate", {"expression": "0"}, session)  # flushes pending events
    return res["result"]["value"], list(cdp.events)


def screenshot(cdp: CDP, session: str, url: str, selector: str | None, click: bool,
               out: Path, timeout: float) -> str:
    """Save a shot of ``url`` into ``out``; an error line, or "" when it went well."""
    load(cdp, session, url, timeout)
    if selector:
        found = cdp.call("Runtime.evaluate", {"expression": (
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false; e.scrollIntoView({block: 'center'});"
            f" if ({json.dumps(click)}) e.click(); return true; }})()"),
            "returnByValue": True}, session)["result"]["value"]
        if not found:
            return f"{out.name}: no element {selector} on {url}"
        time.sleep(0.3)
        if click and not cdp.call("Runtime.evaluate", {
                "expression": "document.querySelector('.dslib-zoom img') !== null",
                "returnByValue": True}, session)["result"]["value"]:
            return f"{out.name}: a click on {selector} opened no figure overlay on {url}"
    shot = cdp.call("Page.captureScreenshot", {"format": "png"}, session)
    out.write_bytes(base64.b64decode(shot["data"]))
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("site_dir", type=Path, help="the built site (make docs: site/)")
    ap.add_argument("--shots", type=Path, default=None,
                    help="write screenshots of the home, notebook 02, paper notes and an API "
                         "page into this folder")
    ap.add_argument("--chromium", default=None,
                    help="Chromium binary (default: $CHROMIUM, else chromium on PATH)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per page load")
    ap.add_argument("--verbose", action="store_true", help="one line per page")
    args = ap.parse_args(argv)

    site = args.site_dir.resolve()
    if not (site / "index.html").is_file():
        print(f"{site}: no index.html; build the site first (make docs, or "
              f"mkdocs build --strict -d {args.site_dir})", file=sys.stderr)
        return 2
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("SKIP: no Chromium found (tried --chromium, $CHROMIUM, "
              f"{', '.join(CHROMIUM_NAMES)} on PATH); on Debian: apt-get install chromium")
        return 0

    server, base = serve(site)
    profile = tempfile.mkdtemp(prefix="check-site-chromium-")
    log_path = Path(profile) / "chromium.log"
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        cdp = CDP(chromium, profile, log)
        try:
            results, failures, n_links, n_external = run_checks(cdp, site, base, args)
        finally:
            cdp.close()
            server.shutdown()
    shutil.rmtree(profile, ignore_errors=True)

    failed = [r for r in results if r.errors]
    for r in results:
        if args.verbose or r.errors:
            p = r.probe
            print(f"{'FAIL' if r.errors else 'ok  '} {r.path}: {p.get('title', '')!r}, "
                  f"{len(p.get('images', []))} img, {p.get('mjxContainers', 0)} math, "
                  f"{len(p.get('links', []))} links")
        for e in r.errors:
            print(f"     - {e}")
    for f in failures:
        print(f"FAIL {f}")
    print(f"{len(results)} pages, {n_links} internal links ({n_external} external, not fetched) "
          f"in {time.monotonic() - t0:.0f} s: "
          f"{len(failed)} pages and {len(failures)} other checks failed")
    return 1 if failed or failures else 0


def run_checks(cdp: CDP, site: Path, base: str, args):
    target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        cdp.call(f"{domain}.enable", {}, session)
    cdp.call("Emulation.setDeviceMetricsOverride", {
        "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)

    # every HTML page of the site, then any page a link reaches that is not a file here
    queue = sorted(str(p.relative_to(site)) for p in site.rglob("*.html")
                   if "assets" not in p.relative_to(site).parts)
    queue.remove("index.html")
    queue.insert(0, "index.html")
    seen = set(queue)
    results: dict[str, PageResult] = {}
    links: list[tuple[str, str, str]] = []  # (page, raw href, absolute href)
    n_external = 0
    while queue:
        path = queue.pop(0)
        r = PageResult(path)
        results[path] = r
        try:
            r.probe, events = load(cdp, session, base + path, args.timeout)
        except (RuntimeError, TimeoutError) as err:
            r.errors.append(str(err))
            continue
        errors = console_errors(events, base) + check_probe(r.probe)
        # one line per distinct error (a failing request may be retried many times)
        r.errors += [e + (f" (x{errors.count(e)})" if errors.count(e) > 1 else "")
                     for e in dict.fromkeys(errors)]
        for link in r.probe["links"]:
            key = page_key(link["href"], base)
            if key is None:
                n_external += not link["href"].startswith(("mailto:", "javascript:"))
                continue
            links.append((path, link["raw"], link["href"]))
            if key.endswith(".html") and key not in seen:
                seen.add(key)
                queue.append(key)

    status: dict[str, int] = {}
    failures = []
    for page, raw, href in links:
        url, _, frag = href.partition("#")
        key = page_key(url, base)
        if url not in status:
            status[url] = http_status(url)
        if status[url] != 200:
            failures.append(f"link {page}: {raw} -> HTTP {status[url]}")
            continue
        if frag and key in results:
            frag = urllib.parse.unquote(frag)
            if frag not in results[key].probe.get("ids", ()):
                failures.append(f"link {page}: {raw} -> no id {frag!r} on {key}")
        elif frag and key.endswith(".html"):
            failures.append(f"link {page}: {raw} -> {key} was not loaded, anchor unchecked")

    cdp.events.clear()
    load(cdp, session, base, args.timeout)
    found = cdp.call("Runtime.evaluate", {
        "expression": SEARCH_PROBE.replace("WORD", json.dumps(SEARCH_WORD)),
        "awaitPromise": True, "returnByValue": True}, session, timeout=30)["result"]["value"]
    if found["n"] == 0:
        failures.append(f"search: no result for {SEARCH_WORD!r} on the home page "
                        f"({' '.join((found['meta'] or '').split())})")
    else:
        print(f"search {SEARCH_WORD!r}: {found['meta']}")

    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
        for name, prefix, selector, click in SHOTS:
            page = next((p for p in results if p.startswith(prefix)), None)
            if page is None:
                failures.append(f"screenshot {name}: no page {prefix}*")
                continue
            url = base + page.removesuffix("index.html")
            if err := screenshot(cdp, session, url, selector, click, args.shots / name,
                                 args.timeout):
                failures.append(f"screenshot {err}")
            else:
                print(f"screenshot {args.shots / name}: {url.removeprefix(base)}")
    return list(results.values()), failures, len(links), n_external


if __name__ == "__main__":
    sys.exit(main())
