"""MkDocs hook of the course site: pages that live elsewhere in the repository, nothing fetched.

Six rules, all at build time and offline:

1. **Notebooks.** Every ``notebooks/NN_*.ipynb`` becomes the page ``notebooks/NN_*.ipynb``
   (rendered by mkdocs-jupyter from its stored outputs), and the nav entry ``Notebooks: []``
   of ``mkdocs.yml`` is filled with them in file order. A renamed or new notebook needs no
   edit here.
2. **Results.** ``reproduce/RESULTS.md`` becomes the page ``results.md``; the images it links
   (``plateau.png`` ...) are copied beside it. The text is read, never copied into ``docs/``.
   Its links into the docs are written for the repository (``../docs/paper-notes.md#backup``)
   and become site links (``paper-notes.md#backup``).
3. **API pages.** Each nav entry ``api/<module>.md`` without a file of that name becomes a page
   ``# <module>`` + ``::: <module>`` (mkdocstrings). The nav's API list is the only list of
   modules to keep up to date.
4. **Links from notebooks.** A notebook's markdown links into the docs are written for Jupyter
   (``../docs/paper-notes.md#backup``, relative to ``notebooks/``); mkdocs-jupyter leaves them
   as they are, so each becomes the URL of that page on the site.
5. **MathJax.** MathJax 3 is copied from the ``django-static-mathjax`` package (the docs extra)
   into ``assets/mathjax/``, so equations render without a network, on the notebook pages too.
6. **Pointers in docstrings.** The library's docstrings are written for a reader of the source:
   they point into the notes as plain text (``docs/paper-notes.md#backup``, or chained,
   ``docs/paper-notes.md#node, #search and #hyperparameters``) and name objects with Sphinx
   roles (``:func:`outcome```), which mkdocstrings' Google style leaves as text
   (``:func:<code>outcome</code>``). On the API pages each pointer becomes a link to that
   section of the site, and each role is dropped, its name linked when it is a module of the
   API pages or an object documented on the same page (plain code otherwise). Source listings
   (``<pre>``) and existing links are left as they are.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
RESULTS = ROOT / "reproduce" / "RESULTS.md"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
API_PAGE = re.compile(r"^api/(?P<module>[A-Za-z_][\w.]*)\.md$")
#: a repository-relative link into docs/ as written in RESULTS.md and the notebooks
DOCS_LINK = re.compile(r"\.\./docs/(?P<page>[\w./-]+\.md)(?P<frag>#[\w-]*)?")
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\((?P<path>[^)\s]+)\)")
#: a docstring's pointer into docs/ as rendered text, with any anchors chained after it (rule 6)
DOCSTRING_POINTER = re.compile(
    r"(?<![\w/.-])docs/(?P<page>[\w-]+\.md)(?P<frags>#[\w-]+(?:(?:,| and| or)\s+#[\w-]+)*)?")
CHAINED_ANCHOR = re.compile(r"#[\w-]+")
#: a Sphinx role as mkdocstrings renders it: ``:func:`x``` -> ``:func:<code>x</code>``
SPHINX_ROLE = re.compile(
    r":(?:func|class|meth|mod|data|attr|obj|exc):<code>(?P<name>[\w.]+)</code>")
#: an HTML tag, to walk a page's text outside <pre>, <a> and the <head> (rule 6)
HTML_TAG = re.compile(r"(<[^>]*>)")
SKIP_TAGS = ("pre", "a", "head", "script", "style")
#: what is copied out of MathJax's es5 build: one combined component, its TeX extensions
#: (loaded on demand by \require or autoload), the CHTML fonts and the licence
MATHJAX_PARTS = (
    "tex-mml-chtml.js",
    "input/tex/extensions",
    "output/chtml/fonts/woff-v2",
    "a11y",
    "ui",
    "sre",
)


#: the site's files, kept by on_files for the link rewriting of on_post_page
_FILES: Files | None = None


def notebook_paths() -> list[Path]:
    """The course notebooks in order (00, 01, ...)."""
    return sorted(NOTEBOOKS.glob(NOTEBOOK_GLOB))


def _walk_nav(nav):
    """Yield every page path named in a nav structure (strings at any depth)."""
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from _walk_nav(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _walk_nav(value)


def _fill_notebooks(nav) -> bool:
    """Replace the value of a ``Notebooks`` nav entry by the notebook pages; True if found."""
    if isinstance(nav, list):
        return any([_fill_notebooks(item) for item in nav])
    if isinstance(nav, dict):
        found = False
        for key, value in nav.items():
            if key == "Notebooks" and value in ([], None):
                nav[key] = [f"notebooks/{p.name}" for p in notebook_paths()]
                found = True
            else:
                found = _fill_notebooks(value) or found
        return found
    return False


def on_config(config):
    if not notebook_paths():
        raise SystemExit(f"no notebooks matching {NOTEBOOK_GLOB} in {NOTEBOOKS}")
    if not _fill_notebooks(config["nav"]):
        raise SystemExit("mkdocs.yml: the nav needs an entry `Notebooks: []` (filled by hooks.py)")
    return config


def api_modules(nav) -> list[str]:
    """Module names of the nav's generated API pages, in nav order."""
    return [m.group("module") for p in _walk_nav(nav) if (m := API_PAGE.match(p))]


@event_priority(100)  # before mkdocs-jupyter wraps the .ipynb files
def on_files(files: Files, config) -> Files:
    for nb in notebook_paths():
        files.append(File(f"notebooks/{nb.name}", str(ROOT), config["site_dir"],
                          config["use_directory_urls"]))
    if not RESULTS.exists():
        raise SystemExit(f"{RESULTS} is missing: the results page is built from it")
    files.append(File.generated(config, "results.md", abs_src_path=str(RESULTS)))
    for link in IMAGE_LINK.finditer(RESULTS.read_text(encoding="utf-8")):
        image = (RESULTS.parent / link.group("path")).resolve()
        if image.is_file() and image.is_relative_to(RESULTS.parent):
            files.append(File.generated(config, link.group("path"), abs_src_path=str(image)))
    global _FILES
    _FILES = files
    for module in api_modules(config["nav"]):
        uri = f"api/{module}.md"
        if files.get_file_from_path(uri) is None:
            content = f"# `{module}`\n\n::: {module}\n"
            files.append(File.generated(config, uri, content=content))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    """RESULTS.md (rule 2): ``](../docs/X.md#a)`` -> ``](X.md#a)``, the page sits in docs/."""
    if page.file.src_uri == "results.md":
        markdown = re.sub(r"\]\(\.\./docs/", "](", markdown)
    return markdown


def on_post_page(output: str, page, config) -> str:
    """Notebook pages (rule 4): ``href="../docs/X.md#a"`` -> the relative URL of page X.
    API pages (rule 6): docstring pointers and Sphinx roles."""
    if API_PAGE.match(page.file.src_uri):
        return link_docstrings(output, page, api_modules(config["nav"]))
    if not page.file.src_uri.startswith("notebooks/"):
        return output

    def site_url(m: re.Match) -> str:
        target = _FILES.get_file_from_path(m.group("page")) if _FILES else None
        if target is None:
            raise SystemExit(f"{page.file.src_uri}: link to docs/{m.group('page')}, no such page")
        return get_relative_url(target.url, page.url) + (m.group("frag") or "")

    return re.sub(r'href="' + DOCS_LINK.pattern + '"',
                  lambda m: 'href="' + site_url(m) + '"', output)


def _page_url(src: str, page, context: str) -> str:
    """The URL of the site page ``src`` (``paper-notes.md``) relative to ``page``."""
    target = _FILES.get_file_from_path(src) if _FILES else None
    if target is None:
        raise SystemExit(f"{page.file.src_uri}: {context} points at docs/{src}, no such page; "
                         "fix the docstring or add the page")
    return get_relative_url(target.url, page.url)


def link_docstrings(output: str, page, modules: list[str]) -> str:
    """Rule 6 on one API page: roles to (linked) code, pointers into docs/ to links."""
    module = API_PAGE.match(page.file.src_uri).group("module")

    def role(m: re.Match) -> str:
        name = m.group("name")
        code = f"<code>{name}</code>"
        if name in modules:
            return f'<a href="{_page_url(f"api/{name}.md", page, name)}">{code}</a>'
        for anchor in (name, f"{module}.{name}"):
            if f'id="{anchor}"' in output:
                return f'<a href="#{anchor}">{code}</a>'
        return code

    def pointer(m: re.Match) -> str:
        url = _page_url(m.group("page"), page, m.group(0))
        frags = m.group("frags") or ""
        first = CHAINED_ANCHOR.match(frags)
        head = first.group(0) if first else ""
        out = f'<a href="{url}{head}">docs/{m.group("page")}{head}</a>'
        return out + CHAINED_ANCHOR.sub(lambda a: f'<a href="{url}{a.group(0)}">{a.group(0)}</a>',
                                        frags[len(head):])

    output = SPHINX_ROLE.sub(role, output)
    parts = HTML_TAG.split(output)
    depth = dict.fromkeys(SKIP_TAGS, 0)
    for i, part in enumerate(parts):
        if i % 2:  # a tag: track whether the text that follows is inside a skipped element
            tag = re.match(r"<(/?)(\w+)", part)
            if tag and tag.group(2).lower() in depth and not part.endswith("/>"):
                depth[tag.group(2).lower()] += -1 if tag.group(1) else 1
        elif "docs/" in part and not any(depth.values()):
            parts[i] = DOCSTRING_POINTER.sub(pointer, part)
    return "".join(parts)


def mathjax_dir() -> Path:
    """MathJax's es5 build inside the installed ``django-static-mathjax`` package."""
    try:
        import mathjax  # the package of django-static-mathjax: static files only, no Django
    except ImportError as err:
        raise SystemExit(
            "MathJax is missing: install the docs extra (`make docs` does, or "
            "`pip install -e '.[docs]'`)"
        ) from err
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise SystemExit(f"{es5}: no tex-mml-chtml.js; is django-static-mathjax complete?")
    return es5


def on_post_build(config):
    es5 = mathjax_dir()
    out = Path(config["site_dir"]) / "assets" / "mathjax"
    for part in MATHJAX_PARTS:
        src, dst = es5 / part, out / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    licence = es5.parent / "LICENSE"
    if licence.is_file():
        shutil.copy2(licence, out / "LICENSE")
