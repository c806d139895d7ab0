"""The course site: paper notes and the pointers into them, an offline config, a strict build.

The build test needs the docs extra (``make test`` and ``make docs`` install it). Without it
the build test is skipped on a developer's machine and FAILS under CI (``CI`` set), so a CI
that forgot the extra cannot pass while building nothing.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTES = DOCS / "paper-notes.md"
#: pointers into a reference file readers do not have (written split so this file has none)
OLD_POINTERS = ("reference " + "\u00a7", "\u00a7" + "11 item")
#: a link into the paper notes, and the anchors chained after it: ``paper-notes.md#a, #b and #c``
NOTES_LINK = re.compile(r"paper-notes(?:\.md)?/?#([\w-]+)((?:(?:,| and| or)\s+#[\w-]+)*)")
#: plugins that never touch the network at build time (privacy, social, optimize ... do)
OFFLINE_PLUGINS = {"search", "mkdocs-jupyter", "mkdocstrings"}


def notes_anchors() -> set[str]:
    text = NOTES.read_text(encoding="utf-8")
    heading = re.findall(r"^#+ .*\{ *#([\w-]+) *\}\s*$", text, flags=re.M)
    spans = re.findall(r'<span id="([\w-]+)"></span>', text)
    assert len(heading) + len(spans) == len(set(heading) | set(spans)), "duplicate anchors"
    return set(heading) | set(spans)


def text_files() -> list[Path]:
    """The repository's text files that git tracks or would track (not ignored run outputs)."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, text=True, check=True).stdout
        files = [ROOT / f for f in listed.splitlines()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        skip = {".git", ".venv", "runs", "site", "build", "dist"}
        files = [f for f in sorted(ROOT.rglob("*"))
                 if not skip & set(f.relative_to(ROOT).parts)]
    suffixes = {".py", ".md", ".ipynb", ".txt", ".toml", ".yml", ".yaml", ".cfg"}
    return [f for f in files if f.is_file() and (f.suffix in suffixes or f.name == "Makefile")]


def notes_links(text: str) -> list[str]:
    """Every anchor a text links to in the paper notes, chained ones (``, #b``) included."""
    found = []
    for first, chained in NOTES_LINK.findall(text):
        found += [first, *re.findall(r"#([\w-]+)", chained)]
    return found


def site_config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def plugin_names(cfg: dict) -> list[str]:
    return [p if isinstance(p, str) else next(iter(p)) for p in cfg["plugins"]]


# ----------------------------------------------------------------------------- paper notes


def test_paper_notes_have_the_sections_the_code_points_at():
    anchors = notes_anchors()
    for needed in ("notation", "node", "search-loop", "backup", "uct", "frontier",
                   "token-rewards", "advantage", "policy-loss", "filtering", "replay-buffer",
                   "hybrid-groups", "hyperparameters", "evaluation", "table-1", "table-3",
                   "table-4", "table-5", "table-6", "paper-vs-code"):
        assert needed in anchors, f"docs/paper-notes.md lost the anchor #{needed}"


def test_no_file_points_at_the_old_reference_file():
    """Pointers go to docs/paper-notes.md#anchor, never to sections of a file readers lack."""
    files = text_files()
    assert ROOT / "dslib" / "search.py" in files and ROOT / "README.md" in files
    found = [f"{f.relative_to(ROOT)}: {old!r}" for f in files
             for old in OLD_POINTERS if old in f.read_text(encoding="utf-8", errors="replace")]
    assert not found, "old pointers; write docs/paper-notes.md#anchor instead:\n" + "\n".join(
        found)


def test_notes_links_read_chained_anchors():
    text = "(docs/paper-notes.md#node, #search and #hyperparameters; [x](paper-notes.md#uct))"
    assert notes_links(text) == ["node", "search", "hyperparameters", "uct"]


def test_links_into_the_paper_notes_resolve():
    anchors = notes_anchors()
    files = [f for f in text_files() if f != Path(__file__).resolve()]  # its examples are fake
    linked = {f: notes_links(f.read_text(encoding="utf-8", errors="replace")) for f in files}
    assert sum(map(len, linked.values())) >= 150, "the code and notebooks lost their pointers"
    broken = [f"{f.relative_to(ROOT)}: #{a}" for f, found in linked.items() for a in found
              if a not in anchors]
    assert not broken, "links to missing paper-notes anchors:\n" + "\n".join(broken)


def test_notes_tag_the_papers_equations_with_v4_numbers():
    tags = set(re.findall(r"\\tag\{([\d-]+)\}", NOTES.read_text(encoding="utf-8")))
    assert {"2", "3", "4", "5", "6", "7", "8", "9", "10", "13", "14", "15"} <= tags


def test_references_have_links_and_the_papers_the_notes_cite():
    text = (DOCS / "references.md").read_text(encoding="utf-8")
    for ref in ("deepsearch", "ucb1", "uct", "ppo", "grpo", "dapo", "deepseek-r1", "minerva",
                "brorl", "knapsack-rl", "pass-at-k", "sober-look"):
        assert f'<span id="{ref}"></span>' in text, f"references.md lost #{ref}"
    arxiv = re.findall(r"arxiv\.org/abs/(\S+?)\)", text)
    assert arxiv and all(re.fullmatch(r"\d{4}\.\d{4,5}", a) for a in arxiv), arxiv
    cited = set(re.findall(r"references\.md#([\w-]+)", NOTES.read_text(encoding="utf-8")))
    assert cited <= set(re.findall(r'<span id="([\w-]+)"></span>', text))


# ----------------------------------------------------------------------------- one page

ONE_PAGE = DOCS / "one-page.md"
#: a pseudocode line's tag: "# 05 filtering.hard_subset" (notebook, then dslib names)
TAG = re.compile(r"#\s*(\d\d)\s+([\w.]+(?:,\s*[\w.]+)*)\s*$")
DOTTED = re.compile(r"`([A-Za-z_]\w*(?:\.\w+)+)`")
#: classes the page names by their short name, and where they live
CLASSES = {"SearchConfig": "dslib.config", "TreeGRPOConfig": "dslib.tree_grpo",
           "Node": "dslib.tree"}
#: what the page must tag: the lower half's rules and the efficiency functions
TAGGED = {"search.run", "uct.select", "frontier.select", "frontier.priority", "backup.backup",
          "supervision.choose_terminal", "tree_grpo.token_rewards", "tree_grpo.advantages",
          "tree_grpo.policy_loss", "filtering.pass1_at_k", "filtering.hard_subset",
          "replay.ReplayBuffer.register_round"}
GLOSSARY = {"q-and-q", "visits", "node-step-chunk", "terminal", "trajectory",
            "recorded-trajectory", "mean-nll", "pass-at-k", "zero-signal-group", "hybrid-group",
            "hard-subset", "replay-buffer", "frontier", "backtrace", "d-t", "width", "soft-clip",
            "dual-clip", "token-mean-step-mean", "plateau"}


def one_page() -> str:
    return ONE_PAGE.read_text(encoding="utf-8")


def pseudocode_lines() -> list[str]:
    blocks = re.findall(r"^```text\n(.*?)^```", one_page(), flags=re.M | re.S)
    assert len(blocks) >= 2, "one-page.md lost its pseudocode (```text blocks)"
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def resolve(name: str):
    """The object a dotted name of the page means: dslib[.module].attr... or Class.field."""
    head, *rest = name.split(".")
    if head in CLASSES:
        cls = getattr(importlib.import_module(CLASSES[head]), head)
        field = ".".join(rest)
        if dataclasses.is_dataclass(cls) and field in {f.name for f in dataclasses.fields(cls)}:
            return field
        return getattr(cls, field)
    parts = rest if head == "dslib" else [head, *rest]
    for i in range(len(parts), 0, -1):  # the longest importable module, then attributes
        module = "dslib." + ".".join(parts[:i])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name is not None and module.startswith(err.name):
                continue  # not a module: an attribute of a shorter one
            raise
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise AttributeError(f"no dslib module in {name!r}")


def section(anchor: str) -> str:
    """The paper notes' text from the heading ``{ #anchor }`` to the next heading."""
    text = NOTES.read_text(encoding="utf-8")
    m = re.search(r"^#+ .*\{ *#" + re.escape(anchor) + r" *\}\s*$", text, flags=re.M)
    assert m, f"paper-notes.md has no heading #{anchor}"
    nxt = re.search(r"^#+ ", text[m.end():], flags=re.M)
    return text[m.end(): m.end() + nxt.start() if nxt else len(text)]


def equations_in(text: str) -> set[int]:
    """Equation numbers a section tags (\\tag{N}) or names ("Eq. N", "Eq. N-M")."""
    found = {int(n) for n in re.findall(r"\\tag\{(\d+)\}", text)}
    for a, b in re.findall(r"Eq\. (\d+)(?:-(\d+))?", text):
        found |= set(range(int(a), int(b or a) + 1))
    return found


def test_one_page_is_in_the_nav_right_after_home():
    nav = site_config()["nav"]
    assert nav[0] == {"Home": "index.md"}
    assert list(nav[1].values()) == ["one-page.md"], nav[1]


def test_one_page_tags_every_pseudocode_line_with_a_notebook_and_dslib_names():
    tagged, bad = set(), []
    for line in pseudocode_lines():
        m = TAG.search(line)
        if not m:
            bad.append(f"no tag: {line.strip()}")
            continue
        nb, names = m.group(1), [n.strip() for n in m.group(2).split(",")]
        if not list((ROOT / "notebooks").glob(f"{nb}_*.ipynb")):
            bad.append(f"notebook {nb} does not exist: {line.strip()}")
        for name in names:
            try:
                resolve(name)
            except (AttributeError, ImportError) as err:
                bad.append(f"{name}: {err}")
            tagged.add(name)
    assert not bad, "one-page.md pseudocode:\n" + "\n".join(bad)
    assert TAGGED <= tagged, f"untagged rules: {sorted(TAGGED - tagged)}"


def test_one_page_cites_only_dslib_names_that_exist():
    names = set(DOTTED.findall(one_page()))
    assert {"SearchConfig.backtrace", "TreeGRPOConfig.baseline"} <= names
    missing = []
    for name in sorted(names):
        try:
            resolve(name)
        except (AttributeError, ImportError) as err:
            missing.append(f"{name}: {err}")
    assert not missing, "names in one-page.md that dslib does not have:\n" + "\n".join(missing)


def test_one_page_links_resolve():
    text, anchors = one_page(), notes_anchors()
    own = set(re.findall(r"\{ *#([\w-]+) *\}", text))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        path, _, frag = target.partition("#")
        if path == "paper-notes.md":
            assert not frag or frag in anchors, f"one-page.md -> {target}: no such anchor"
        elif path == "":
            assert frag in own, f"one-page.md -> #{frag}: no such anchor on the page"
        elif path.startswith("notebooks/"):
            assert (ROOT / path).is_file() and not frag, f"one-page.md -> {target}"
        elif path == "results.md":
            assert (ROOT / "reproduce" / "RESULTS.md").is_file()
        else:
            assert (DOCS / path).is_file(), f"one-page.md -> {target}: no such page"
    assert GLOSSARY <= own, f"glossary entries missing: {sorted(GLOSSARY - own)}"


def test_one_page_equation_and_table_links_land_on_their_section():
    wrong = []
    cited = re.findall(r"\[((?:Eq|Alg|Table)\.? [\d, -]+)\]\(paper-notes\.md#([\w-]+)\)",
                       one_page())
    assert len(cited) >= 15, cited
    for label, anchor in cited:
        kind, numbers = label.split(" ", 1)
        if kind == "Eq.":
            a, _, b = numbers.partition("-")
            if not set(range(int(a), int(b or a) + 1)) <= equations_in(section(anchor)):
                wrong.append(f"{label} -> #{anchor}")
        elif kind == "Alg.":
            if f"Algorithm {numbers}" not in section(anchor):
                wrong.append(f"{label} -> #{anchor}")
        elif anchor != f"table-{numbers}":
            wrong.append(f"{label} -> #{anchor}")
    assert not wrong, "links to a section that does not hold the equation or table:\n" + (
        "\n".join(wrong))


def test_one_page_quotes_only_numbers_of_the_paper_notes():
    """The paper's numbers on the page are copied, not typed: each is in the paper notes.

    The ideas table's last column (the tiny kit's results, from reproduce/RESULTS.md) is exempt.
    """
    notes = NOTES.read_text(encoding="utf-8")
    text = "\n".join(line.rsplit("|", 2)[0] if line.startswith("|") else line
                     for line in one_page().splitlines())
    quoted = re.findall(r"(?<![\w.{])(\d{1,3}(?:,\d{3})+|\d+\.\d+)(?![\w}])", text)
    assert quoted, "one-page.md quotes no results"
    invented = sorted({n for n in quoted if n not in notes})
    assert not invented, f"numbers in one-page.md that the paper notes do not have: {invented}"


# ----------------------------------------------------------------------------- site config


def test_site_config_is_strict_and_offline():
    cfg = site_config()
    assert cfg["strict"] is True
    assert set(plugin_names(cfg)) <= OFFLINE_PLUGINS, plugin_names(cfg)
    assert cfg["theme"]["name"] == "material" and cfg["theme"]["font"] is False  # no web fonts
    jupyter = next(p["mkdocs-jupyter"] for p in cfg["plugins"] if "mkdocs-jupyter" in p)
    assert jupyter["execute"] is False and jupyter["include_requirejs"] is False
    for script in cfg["extra_javascript"]:
        assert "://" not in script and not script.startswith("//"), script


def test_nav_names_existing_pages_and_modules():
    cfg = site_config()
    pages = []

    def walk(nav):
        if isinstance(nav, str):
            pages.append(nav)
        elif isinstance(nav, list):
            for item in nav:
                walk(item)
        elif isinstance(nav, dict):
            for value in nav.values():
                walk(value)

    walk(cfg["nav"])
    assert {"Notebooks": []} in cfg["nav"], "hooks.py fills `Notebooks: []` with notebooks/*"
    for page in pages:
        if m := re.fullmatch(r"api/(dslib[\w.]*)\.md", page):
            module = ROOT / Path(*m.group(1).split("."))
            assert module.with_suffix(".py").is_file() or (module / "__init__.py").is_file(), (
                f"mkdocs.yml nav: {page} names a module that does not exist")
        elif page != "results.md":  # results.md is reproduce/RESULTS.md (hooks.py)
            assert (DOCS / page).is_file(), f"mkdocs.yml nav: {page} is missing"
    modules = {p for p in pages if p.startswith("api/dslib.")}
    for lower_half in ("tree", "uct", "frontier", "backup", "supervision", "search",
                       "tree_grpo", "policy.base", "verify", "evaluate"):
        assert f"api/dslib.{lower_half}.md" in modules


def test_docs_extra_is_pinned():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["docs"]
    names = {re.split(r"[=<>~]", r)[0] for r in extra}
    assert {"mkdocs", "mkdocs-material", "mkdocs-jupyter", "mkdocstrings-python",
            "django-static-mathjax"} <= names
    assert all("==" in r for r in extra), extra


# ----------------------------------------------------------------------------- the build


def _links(page: Path):
    for url in re.findall(r'\b(?:href|src)="([^"]*)"', page.read_text(errors="replace")):
        yield html.unescape(url)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if importlib.util.find_spec("mkdocs") is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs is not installed: CI must install the docs extra (make docs)")
        pytest.skip("the docs extra is not installed (make docs installs it)")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stderr[-6000:]}"
    assert "WARNING" not in run.stderr, run.stderr[-6000:]
    return out


def test_site_has_every_notebook_with_its_figures(site):
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        page = site / "notebooks" / nb.stem / "index.html"
        assert page.is_file(), f"{nb.name} has no page"
        text = page.read_text(encoding="utf-8")
        if '"image/png"' in nb.read_text(encoding="utf-8"):
            assert re.search(r'<img [^>]*src="data:image/png;base64,', text), (
                f"{nb.name}: figures missing")
        assert "jp-RenderedMarkdown" in text


def test_site_has_notes_results_references_and_api(site):
    notes = (site / "paper-notes" / "index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in notes
    assert all(f'id="{a}"' in notes for a in notes_anchors())
    results = (site / "results" / "index.html").read_text(encoding="utf-8")
    first_heading = (ROOT / "reproduce" / "RESULTS.md").read_text().splitlines()[0].lstrip("# ")
    assert first_heading in results
    for image in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", (ROOT / "reproduce" / "RESULTS.md")
                            .read_text()):
        assert (site / image).is_file(), f"results image {image} not copied"
    assert (site / "references" / "index.html").is_file()
    backup = (site / "api" / "dslib.backup" / "index.html").read_text(encoding="utf-8")
    assert "update_value" in backup and "doc-function" in backup  # rendered by mkdocstrings


def test_site_has_the_one_page(site):
    page = (site / "one-page" / "index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in page and "<dl>" in page  # equations and the glossary list
    missing = sorted(a for a in GLOSSARY if f'id="{a}"' not in page)
    assert not missing, f"glossary entries without an anchor on the built page: {missing}"
    assert page.count('<pre') >= 2  # the two pseudocode blocks
    assert 'href="one-page/"' in (site / "index.html").read_text(encoding="utf-8")


def test_site_loads_nothing_from_the_network(site):
    mathjax = site / "assets" / "mathjax"
    assert (mathjax / "tex-mml-chtml.js").is_file()
    assert list((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    remote = re.compile(r"<(?:script|img|link)\b[^>]*\b(?:src|href)=\"(?:https?:)?//")
    offenders = [str(p.relative_to(site)) for p in site.rglob("*.html")
                 if remote.search(p.read_text(errors="replace"))]
    assert not offenders, f"pages loading remote scripts, styles or images: {offenders}"


def test_site_has_no_broken_internal_links(site):
    ids: dict[Path, set[str]] = {}
    broken = []
    for page in site.rglob("*.html"):
        if page.name == "404.html":  # absolute links by design (served from the site root)
            continue
        for url in _links(page):
            if not url or url.startswith(("http://", "https://", "mailto:", "data:", "//")):
                continue
            parts = urlsplit(url)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(site)} -> {url}")
            elif parts.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = set(re.findall(r'\bid="([^"]+)"', target.read_text("utf-8")))
                if parts.fragment not in ids[target]:
                    broken.append(f"{page.relative_to(site)} -> {url} (anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken[:40])


# ----------------------------------------------------------------------------- docs/hooks.py


def _hooks():
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("site_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hooks_link_docstring_pointers_and_roles():
    """Rule 6 of docs/hooks.py on a hand-written API page: what is linked, what is left."""
    from types import SimpleNamespace

    from mkdocs.structure.files import File, Files

    hooks = _hooks()
    hooks._FILES = Files([File(p, "docs", "site", True) for p in
                          ("paper-notes.md", "api/dslib.uct.md", "api/dslib.tree.md")])
    page = SimpleNamespace(file=SimpleNamespace(src_uri="api/dslib.uct.md"), url="api/dslib.uct/")
    given = (
        "<head><title>docs/paper-notes.md#uct</title></head>"
        "<p>UCT, docs/paper-notes.md#uct (v4).</p>"
        "<p>docs/paper-notes.md#node, #search and #hyperparameters; :mod:<code>dslib.tree</code>,"
        " :func:<code>score</code>, :class:<code>dslib.tiny.TinyConfig</code></p>"
        '<h2 id="dslib.uct.score">score</h2>'
        '<pre><code>"""docs/paper-notes.md#uct"""</code></pre>'
        '<a href="x">docs/paper-notes.md#uct</a> see my-docs/paper-notes.md'
    )
    notes = "../../paper-notes/"
    expected = (
        "<head><title>docs/paper-notes.md#uct</title></head>"
        f'<p>UCT, <a href="{notes}#uct">docs/paper-notes.md#uct</a> (v4).</p>'
        f'<p><a href="{notes}#node">docs/paper-notes.md#node</a>, <a href="{notes}#search">#search'
        f'</a> and <a href="{notes}#hyperparameters">#hyperparameters</a>; '
        '<a href="../dslib.tree/"><code>dslib.tree</code></a>,'
        ' <a href="#dslib.uct.score"><code>score</code></a>, <code>dslib.tiny.TinyConfig</code></p>'
        '<h2 id="dslib.uct.score">score</h2>'
        '<pre><code>"""docs/paper-notes.md#uct"""</code></pre>'
        '<a href="x">docs/paper-notes.md#uct</a> see my-docs/paper-notes.md'
    )
    assert hooks.link_docstrings(given, page, ["dslib.uct", "dslib.tree"]) == expected
    with pytest.raises(SystemExit, match="docs/missing.md, no such page"):
        hooks.link_docstrings("<p>docs/missing.md#x</p>", page, [])


def test_site_api_pages_link_docstring_pointers(site):
    """No Sphinx role left as text, no docs/ pointer left unlinked outside source listings."""
    left = []
    for page in sorted((site / "api").glob("dslib.*/index.html")):
        text = page.read_text(encoding="utf-8")
        text = re.sub(r"<pre\b.*?</pre>|<a\b.*?</a>|<head>.*?</head>", "", text, flags=re.S)
        left += [f"{page.parent.name}: {m}" for m in
                 re.findall(r":\w+:<code>[^<]*</code>|docs/[\w-]+\.md[#\w-]*", text)]
    assert not left, "unlinked docstring pointers or roles on API pages:\n" + "\n".join(left[:20])
    uct = (site / "api" / "dslib.uct" / "index.html").read_text(encoding="utf-8")
    assert '<a href="../../paper-notes/#uct">docs/paper-notes.md#uct</a>' in uct
