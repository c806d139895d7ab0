"""Drawings of search trees, frontier score breakdowns, q-value backups and training runs
(matplotlib only).

The tree drawings take an optional ``ax`` and return the Axes they drew on; the run plots
(``plot_training`` and below) return a Figure. None calls ``plt.show()``. pyplot is imported
inside the functions, so importing ``dslib.viz`` is cheap.

| function               | input                                 | shows                           |
|------------------------|---------------------------------------|---------------------------------|
| ``draw_tree``          | ``Tree`` or ``Tree.to_dict()``        | nodes coloured by Q = q/N,      |
|                        |                                       | terminals, frontier pick, paths |
| ``plot_frontier_terms``| ``Tree`` or ``to_dict()``, config     | the terms of F(s) (v4 Eq. 7)    |
|                        |                                       | for the best frontier candidates|
| ``plot_q_before_after``| two ``to_dict()`` snapshots, or lists | q along the backed-up path,     |
|                        |                                       | before / after (v4 Eq. 3-5)     |
| ``plot_training``      | metrics rows of runs                  | reward, zero-signal share,      |
|                        |                                       | held-out pass@1 per step        |
| ``plot_before_after``  | label -> rows (or rows per seed)      | pass@1 before / after, error    |
|                        |                                       | bars over seeds                 |
| ``plot_eval_vs_tokens``| label -> rows (or rows per seed)      | pass@1 against sampled tokens   |
| ``plot_rounds``        | rows of ``dslib.rounds``              | the paper's Table 6 as bars     |

Drawing conventions of ``draw_tree``: the root is at the top, depth grows downwards; circles are
non-terminal nodes, squares are terminals with a green (correct), red (wrong) or grey
(incomplete / not verified) edge, a thick edge when the terminal was backed up and recorded.
Face colours use a diverging colormap centred at Q = 0 on a fixed [-1, 1] scale, so drawings
of different trees compare directly.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dslib import frontier
from dslib.config import SearchConfig
from dslib.tree import Node, Tree

#: diverging colormap of Q (purple = positive, orange = negative; no green/red, which mark
#: terminal outcomes)
CMAP = "PuOr"
OUTCOME_COLORS = {
    "correct": "#2ca02c", "wrong": "#d62728", "incomplete": "#7f7f7f", None: "#7f7f7f"
}
FRONTIER_COLOR = "#000000"
NEGATIVE_COLOR = "#d62728"
HIGHLIGHT_COLOR = "#17becf"
#: collection ``gid`` values, so tests and users can find what was drawn
GID_NODES = "dslib-nodes"
GID_TERMINALS = "dslib-terminals"
GID_HIGHLIGHT = "dslib-highlight"
GID_FRONTIER = "dslib-frontier-choice"
GID_NEGATIVE = "dslib-negative"

TERM_LABELS = {
    "quality": "quality  λ1·tanh(Q(parent))",
    "own": "own  λ4·tanh(Q(s))",
    "uncertainty": "uncertainty  λ2·H(s)",
    "depth": "depth  λ3·D(d)",
}
TERM_COLORS = {
    "quality": "#5e3c99",
    "own": "#b2abd2",
    "uncertainty": "#e66101",
    "depth": "#2ca02c",
}


# ----------------------------------------------------------------------------- tree records


@dataclass
class _Rec:
    """One node as the drawings see it (from a Node or a ``to_dict()`` entry)."""

    id: int
    parent: int | None
    depth: int
    q: float
    value: float
    visits: int
    terminal: bool
    outcome: str | None
    backed_up: bool
    text: str | None = None
    children: list[int] = field(default_factory=list)


def _records(
    tree: Tree | dict[str, Any], decode: Callable[[list[int]], str] | None
) -> dict[int, _Rec]:
    """Node records keyed by id, children in creation order, DFS pre-order of insertion."""
    if isinstance(tree, Tree):
        snap = tree.to_dict(decode=decode)
    elif isinstance(tree, dict) and "nodes" in tree:
        snap = tree
    else:
        raise TypeError(f"expected a Tree or Tree.to_dict(), got {type(tree).__name__}")
    recs: dict[int, _Rec] = {}
    for e in snap["nodes"]:
        text = e.get("text")
        if text is None and decode is not None and "token_ids" in e:
            text = decode(list(e["token_ids"]))
        recs[int(e["id"])] = _Rec(
            id=int(e["id"]),
            parent=None if e["parent"] is None else int(e["parent"]),
            depth=int(e["depth"]),
            q=float(e["q"]),
            value=float(e["value"]),
            visits=int(e["visits"]),
            terminal=bool(e["terminal"]),
            outcome=e.get("outcome"),
            backed_up=bool(e.get("backed_up", False)),
            text=text,
        )
    for r in recs.values():
        if r.parent is not None and r.parent in recs:
            recs[r.parent].children.append(r.id)
    for r in recs.values():
        r.children.sort()  # creation order (ids grow with creation)
    return recs


def _ids(nodes: Any) -> list[int]:
    """Node ids from None, a Node, an int, or an iterable of those."""
    if nodes is None:
        return []
    if isinstance(nodes, (Node, int)):
        nodes = [nodes]
    return [n.id if isinstance(n, Node) else int(n) for n in nodes]


def _root_id(recs: dict[int, _Rec]) -> int:
    roots = [r.id for r in recs.values() if r.parent is None]
    if len(roots) != 1:
        raise ValueError(f"a tree has exactly one root, found {len(roots)}")
    return roots[0]


def _keep(recs: dict[int, _Rec], root: int, max_nodes: int) -> set[int]:
    """The first ``max_nodes`` nodes in breadth-first order (shallow nodes first)."""
    keep: set[int] = set()
    queue = [root]
    while queue and len(keep) < max_nodes:
        nid = queue.pop(0)
        keep.add(nid)
        queue.extend(recs[nid].children)
    return keep


def tree_layout(
    tree: Tree | dict[str, Any], max_nodes: int | None = None
) -> dict[int, tuple[float, float]]:
    """(x, y) per node id: leaves spaced one unit apart left to right, a parent centred over
    its children, y = -depth. Children keep creation order, so the first child is leftmost."""
    recs = _records(tree, None)
    root = _root_id(recs)
    keep = _keep(recs, root, max_nodes) if max_nodes is not None else set(recs)
    return _layout(recs, root, keep)


def _layout(recs: dict[int, _Rec], root: int, keep: set[int]) -> dict[int, tuple[float, float]]:
    pos: dict[int, tuple[float, float]] = {}
    next_x = 0.0
    # iterative post-order: leaves get the next free slot, parents the mean of their children
    stack: list[tuple[int, bool]] = [(root, False)]
    while stack:
        nid, done = stack.pop()
        kids = [c for c in recs[nid].children if c in keep]
        if not kids:
            pos[nid] = (next_x, -float(recs[nid].depth))
            next_x += 1.0
        elif done:
            xs = [pos[c][0] for c in kids]
            pos[nid] = ((min(xs) + max(xs)) / 2, -float(recs[nid].depth))
        else:
            stack.append((nid, True))
            stack.extend((c, False) for c in reversed(kids))
    return pos


def _path_ids(recs: dict[int, _Rec], nid: int) -> list[int]:
    out = []
    cur: int | None = nid
    while cur is not None:
        out.append(cur)
        cur = recs[cur].parent
    return out[::-1]


def _short(text: str, limit: int = 14) -> str:
    text = text.replace("\n", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----------------------------------------------------------------------------- draw_tree


def draw_tree(
    tree: Tree | dict[str, Any],
    ax: Any = None,
    *,
    highlight: Any = None,
    frontier_choice: Any = None,
    negative: Any = None,
    decode: Callable[[list[int]], str] | None = None,
    max_nodes: int = 400,
    labels: bool | None = None,
    colorbar: bool = True,
    legend: bool = True,
    title: str | None = None,
) -> Any:
    """Draw a search tree top-down; returns the Axes.

    | argument          | meaning                                                             |
    |-------------------|---------------------------------------------------------------------|
    | ``tree``          | a ``Tree`` or its ``to_dict()`` snapshot                            |
    | ``highlight``     | node(s) or id(s): the path root..node drawn thick, the node ringed  |
    | ``frontier_choice``| node or id: the node the frontier picks next (black ring)          |
    | ``negative``      | node or id: the confident negative that was backed up (red dashed)  |
    | ``decode``        | ``ids -> str``: write each chunk's text under its node (<= 30 nodes)|
    | ``max_nodes``     | draw at most this many nodes (breadth-first); the title says if cut |
    | ``labels``        | "N, Q" next to each node; default: on for trees of <= 30 nodes      |

    Colour = Q(s) = q/N on a diverging scale centred at 0 (colorbar). Circles: inner nodes;
    squares: terminals, edge green (correct) / red (wrong) / grey (incomplete), thick when the
    terminal was backed up and recorded. Every node is one point of a collection with gid
    ``GID_NODES`` (inner) or ``GID_TERMINALS``; rings have gids ``GID_HIGHLIGHT``,
    ``GID_FRONTIER``, ``GID_NEGATIVE``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    recs = _records(tree, decode)
    root = _root_id(recs)
    keep = _keep(recs, root, max_nodes)
    pos = _layout(recs, root, keep)
    n = len(keep)
    n_leaves = sum(1 for nid in keep if not any(c in keep for c in recs[nid].children))
    depth = max(recs[nid].depth for nid in keep)
    show_labels = (n <= 30) if labels is None else labels
    show_text = decode is not None or any(recs[nid].text for nid in keep)
    show_text = show_text and n <= 30
    if ax is None:
        per_leaf = 1.1 if show_text else (0.85 if show_labels else 0.2)
        width = min(18.0, max(6.0, per_leaf * n_leaves + 2.0))
        height = min(9.0, max(3.0, 0.55 * (depth + 1) + 1.5))
        _, ax = plt.subplots(figsize=(width, height))

    # edges; the highlighted paths thick
    hl = [nid for nid in _ids(highlight) if nid in recs]
    on_path: set[tuple[int, int]] = set()
    for nid in hl:
        p = _path_ids(recs, nid)
        on_path.update(zip(p[:-1], p[1:]))
    plain, thick = [], []
    for nid in keep:
        par = recs[nid].parent
        if par is None or par not in keep:
            continue
        seg = [pos[par], pos[nid]]
        (thick if (par, nid) in on_path else plain).append(seg)
    ax.add_collection(LineCollection(plain, colors="#b0b0b0", linewidths=0.8, zorder=1))
    if thick:
        ax.add_collection(
            LineCollection(thick, colors=HIGHLIGHT_COLOR, linewidths=2.6, zorder=2, alpha=0.9)
        )

    norm = Normalize(vmin=-1.0, vmax=1.0, clip=True)
    cmap = plt.get_cmap(CMAP)
    size = 90 if n <= 40 else (45 if n <= 150 else 22)
    order = sorted(keep)
    inner = [recs[i] for i in order if not recs[i].terminal]
    terms = [recs[i] for i in order if recs[i].terminal]
    if inner:
        ax.scatter(
            [pos[r.id][0] for r in inner], [pos[r.id][1] for r in inner],
            c=[norm(r.q) for r in inner], cmap=cmap, vmin=0, vmax=1, s=size, marker="o",
            edgecolors="#404040", linewidths=0.6, zorder=3, gid=GID_NODES,
        )
    if terms:
        ax.scatter(
            [pos[r.id][0] for r in terms], [pos[r.id][1] for r in terms],
            c=[norm(r.q) for r in terms], cmap=cmap, vmin=0, vmax=1, s=size * 1.1, marker="s",
            edgecolors=[OUTCOME_COLORS.get(r.outcome, "#7f7f7f") for r in terms],
            linewidths=[2.6 if r.backed_up else 1.2 for r in terms], zorder=3, gid=GID_TERMINALS,
        )

    def ring(ids: list[int], color: str, gid: str, scale: float, lw: float, style: str) -> None:
        ids = [i for i in ids if i in keep]
        if ids:
            ax.scatter(
                [pos[i][0] for i in ids], [pos[i][1] for i in ids], s=size * scale,
                facecolors="none", edgecolors=color, linewidths=lw, linestyles=style,
                zorder=4, gid=gid,
            )

    ring(hl, HIGHLIGHT_COLOR, GID_HIGHLIGHT, 3.4, 1.4, "solid")
    ring(_ids(frontier_choice), FRONTIER_COLOR, GID_FRONTIER, 5.5, 2.2, "solid")
    ring(_ids(negative), NEGATIVE_COLOR, GID_NEGATIVE, 5.5, 2.0, "dashed")

    fs = 7 if n <= 20 else 6
    if show_labels:
        for nid in order:
            r = recs[nid]
            x, y = pos[nid]
            ax.annotate(
                f"N={r.visits}\nQ={r.q:+.2f}", (x, y), xytext=(6, 2), textcoords="offset points",
                fontsize=fs, color="#303030", va="bottom", ha="left", zorder=5,
            )
    if show_text:
        for nid in order:
            r = recs[nid]
            if r.text is None or r.parent is None:
                continue
            x, y = pos[nid]
            ax.annotate(
                _short(r.text), (x, y), xytext=(0, -9), textcoords="offset points",
                fontsize=fs, family="monospace", color="#202020", ha="center", va="top",
                zorder=5,
            )

    xs = [p[0] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + (1.4 if show_labels else 0.8))
    ax.set_ylim(-depth - (0.7 if show_text else 0.5), 0.5)
    ax.set_xticks([])
    ax.set_yticks([-d for d in range(depth + 1)], [str(d) for d in range(depth + 1)])
    ax.set_ylabel("depth d(s)")
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)

    if colorbar:
        sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        sm.set_array([])
        cb = ax.figure.colorbar(sm, ax=ax, fraction=0.03, pad=0.01)
        cb.set_label("Q(s) = q(s) / N(s)")
    if legend:
        handles = [
            Line2D([], [], marker="o", ls="", mfc="white", mec="#404040", label="node"),
        ]
        for outcome, label in (("correct", "correct ✓"), ("wrong", "wrong ✗"),
                               ("incomplete", "incomplete")):
            if any(r.outcome == outcome for r in terms):
                handles.append(Line2D([], [], marker="s", ls="", mfc="white", mew=2,
                                      mec=OUTCOME_COLORS[outcome], label=f"terminal: {label}"))
        if any(r.backed_up for r in terms):
            handles.append(Line2D([], [], marker="s", ls="", mfc="white", mew=3, mec="#404040",
                                  label="thick edge: backed up"))
        if hl:
            handles.append(Line2D([], [], color=HIGHLIGHT_COLOR, lw=2.6, marker="o", mfc="none",
                                  mec=HIGHLIGHT_COLOR, label="highlighted path"))
        if any(i in keep for i in _ids(frontier_choice)):
            handles.append(Line2D([], [], marker="o", ls="", ms=12, mfc="none", mew=2,
                                  mec=FRONTIER_COLOR, label="frontier choice s*"))
        if any(i in keep for i in _ids(negative)):
            handles.append(Line2D([], [], marker="o", ls="", ms=12, mfc="none", mew=2,
                                  mec=NEGATIVE_COLOR, label="confident negative (dashed)"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.02), ncol=4,
                  fontsize=7, frameon=False)

    cut = len(recs) - n
    head = title if title is not None else f"{len(recs)} nodes"
    ax.set_title(head + (f"  ({cut} deeper nodes not drawn)" if cut else ""), fontsize=10)
    return ax


# ----------------------------------------------------------------------------- frontier terms


def tree_from_dict(snapshot: dict[str, Any]) -> Tree:
    """Rebuild a ``Tree`` (structure, values, visits, flags) from ``Tree.to_dict()``.

    Chunks are empty unless the snapshot has ``token_ids`` (``to_dict(include_tokens=True)``);
    log-probs are zeros (a snapshot has none), so the entropy term of the frontier score is 0
    on a rebuilt tree.
    """
    entries = sorted(snapshot["nodes"], key=lambda e: int(e["id"]))
    root_e = next(e for e in entries if e["parent"] is None)
    tree = Tree(root_e.get("token_ids", []))
    nodes: dict[int, Node] = {int(root_e["id"]): tree.root}
    for e in entries:
        if e["parent"] is None:
            continue
        node = tree.add_child(
            nodes[int(e["parent"])], e.get("token_ids", []),
            finished=bool(e["finished"]), terminal=bool(e["terminal"]),
        )
        node.id = int(e["id"])
        nodes[node.id] = node
    tree._next_id = max(nodes) + 1
    for e in entries:
        node = nodes[int(e["id"])]
        node.value, node.visits = float(e["value"]), int(e["visits"])
        node.score, node.outcome = e.get("score"), e.get("outcome")
        node.backed_up = bool(e.get("backed_up", False))
    tree.recorded = [nodes[i] for i in snapshot.get("recorded", [])]
    current = snapshot.get("current")
    tree.current = None if current is None else nodes[int(current)]
    tree.iterations = int(snapshot.get("iterations", 0))
    for flag in ("done", "exhausted", "hit_max_iterations"):
        setattr(tree, flag, bool(snapshot.get(flag, False)))
    return tree


def plot_frontier_terms(
    tree: Tree | dict[str, Any],
    cfg: SearchConfig,
    top: int = 10,
    ax: Any = None,
    *,
    annotate: bool = True,
    decode: Callable[[list[int]], str] | None = None,
) -> Any:
    """Horizontal stacked bars of the F(s) terms (v4 Eq. 7) for the ``top`` frontier candidates.

    Candidates are sorted by F(s) (ties keep depth-first order, the order that breaks them in
    ``frontier.select``), the winner on top and marked ``s*``. Positive terms stack to the
    right of 0, negative ones to the left; a black tick marks the total F(s), written at the
    right when ``annotate``. Accepts a ``Tree`` or a ``to_dict()`` snapshot (see
    ``tree_from_dict``: no entropy term then). Rows are named by node id, or by
    ``decode(node.token_ids)`` when given.
    """
    import matplotlib.pyplot as plt

    if not isinstance(tree, Tree):
        tree = tree_from_dict(tree)
    ranked = frontier.ranked(tree, cfg)
    order = sorted(range(len(ranked)), key=lambda i: (-ranked[i][1].total, i))[:top]
    rows = [ranked[i] for i in order]
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.38 * max(len(rows), 3) + 1.4))
    if not rows:
        ax.text(0.5, 0.5, "empty frontier", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    names = ("quality", "own", "uncertainty", "depth")
    used = [k for k in names if any(getattr(t, k) != 0 for _, t in rows)] or ["quality"]
    ys = list(range(len(rows)))[::-1]  # best at the top
    for k in used:
        vals = [getattr(t, k) for _, t in rows]
        lefts = []
        for j, (_, t) in enumerate(rows):
            before = [getattr(t, m) for m in used[: used.index(k)]]
            v = vals[j]
            same_sign = [b for b in before if (b > 0 if v >= 0 else b < 0)]
            lefts.append(sum(same_sign))
        ax.barh(ys, vals, left=lefts, height=0.62, color=TERM_COLORS[k], label=TERM_LABELS[k],
                edgecolor="white", linewidth=0.5)
    totals = [t.total for _, t in rows]
    ax.scatter(totals, ys, marker="|", s=260, color="black", zorder=4, label="F(s) total")
    ax.axvline(0, color="#404040", lw=0.8)
    best = frontier.select(tree, cfg)
    ticks = []
    for node, _ in rows:
        star = "  s* →" if best is not None and node is best else ""
        name = _short(decode(list(node.token_ids)), 12) if decode is not None else f"#{node.id}"
        ticks.append(f"{star} {name} d={node.depth} Q(par)={node.parent.q:+.2f}")
    ax.set_yticks(ys, ticks, fontsize=8)
    lo = min(min(totals), min(sum(min(getattr(t, k), 0) for k in used) for _, t in rows), 0.0)
    hi = max(max(totals), max(sum(max(getattr(t, k), 0) for k in used) for _, t in rows), 0.0)
    span = max(hi - lo, 1e-3)
    ax.set_xlim(lo - 0.05 * span, hi + (0.32 if annotate else 0.05) * span)
    if annotate:
        for y, (_, t) in zip(ys, rows):
            ax.text(hi + 0.03 * span, y, f"F={t.total:+.4f}  (depth {t.depth:+.4f})",
                    va="center", fontsize=7, family="monospace")
    ax.set_xlabel("contribution to F(s)")
    extra = f", entropy bonus λ2={cfg.lambda2}" if cfg.entropy_bonus else ""
    ax.set_title(
        f"Frontier F(s): {len(ranked)} candidates, top {len(rows)}   "
        f"(λ1={cfg.lambda1}, λ3={cfg.lambda3}, D={cfg.depth_bonus}{extra})",
        fontsize=9,
    )
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=3, fontsize=7, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


# ----------------------------------------------------------------------------- q before / after


def _changed_path(before: dict[int, _Rec], after: dict[int, _Rec]) -> list[int]:
    """Ids whose value or visits changed, i.e. the backed-up path, ordered by depth."""
    changed = [
        nid for nid, r in after.items()
        if nid not in before or (before[nid].value, before[nid].visits) != (r.value, r.visits)
    ]
    return sorted(changed, key=lambda i: (after[i].depth, i))


def plot_q_before_after(
    before: Tree | dict[str, Any] | Sequence[float],
    after: Tree | dict[str, Any] | Sequence[float],
    ax: Any = None,
    *,
    path: Any = None,
    quantity: str = "value",
    labels: tuple[str, str] = ("before", "after"),
    title: str | None = None,
) -> Any:
    """Grouped bars of q along one root-to-leaf path before and after a backup (v4 Eq. 3-5).

    ``before`` / ``after``: two ``to_dict()`` snapshots (or Trees) of the same tree, or two
    equal-length lists of numbers. Bars are labelled by depth and node id, or by the node's
    ``text`` when the snapshot has one (``to_dict(decode=...)``). ``path``: node ids (or a
    leaf node / id, meaning its path root..leaf); default: the nodes whose value or visits
    changed between the snapshots.
    ``quantity``: "value" (the accumulated q(s) that Eq. 5 updates) or "q" (Q = q/N).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if quantity not in ("value", "q"):
        raise ValueError(f"quantity must be 'value' or 'q', got {quantity!r}")
    if isinstance(before, (Tree, dict)) != isinstance(after, (Tree, dict)):
        raise TypeError("before and after must both be snapshots/Trees or both be lists")
    if isinstance(before, (Tree, dict)):
        rb, ra = _records(before, None), _records(after, None)  # type: ignore[arg-type]
        if path is None:
            ids = _changed_path(rb, ra)
        else:
            ids = _ids(path)
            if len(ids) == 1:
                ids = _path_ids(ra, ids[0])
        if not ids:
            raise ValueError("no path: the snapshots are identical and no path was given")
        zero = _Rec(0, None, 0, 0.0, 0.0, 0, False, None, False)
        vb = [getattr(rb.get(i, zero), quantity) for i in ids]
        va = [getattr(ra[i], quantity) for i in ids]
        nb = [rb.get(i, zero).visits for i in ids]
        na = [ra[i].visits for i in ids]
        names = [
            f"d={ra[i].depth}\n"
            + ("root" if ra[i].parent is None else (ra[i].text or f"#{i}"))
            for i in ids
        ]
    else:
        vb, va = [float(v) for v in before], [float(v) for v in after]  # type: ignore[union-attr]
        if len(vb) != len(va):
            raise ValueError(f"{len(vb)} values before but {len(va)} after")
        nb = na = None
        names = [str(i) for i in range(len(vb))]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(va) + 2), 3.2))
    xs = list(range(len(va)))
    w = 0.38
    ax.bar([x - w / 2 for x in xs], vb, w, color="#bdbdbd", edgecolor="#606060", label=labels[0])
    colors = ["#5e3c99" if v > 0 else ("#e66101" if v < 0 else "#bdbdbd") for v in va]
    ax.bar([x + w / 2 for x in xs], va, w, color=colors, edgecolor="#303030", label=labels[1])
    ax.axhline(0, color="#404040", lw=0.8)
    lo = min(min(vb), min(va), 0.0)
    hi = max(max(vb), max(va), 0.0)
    span = max(hi - lo, 0.5)
    for x, v in zip(xs, va):
        off = 0.03 * span
        ax.text(x + w / 2, v + (off if v >= 0 else -off), f"{v:+.2f}", ha="center",
                va="bottom" if v >= 0 else "top", fontsize=7)
    if nb is not None and na is not None:
        names = [f"{s}\nN {b}→{a}" for s, b, a in zip(names, nb, na)]
    ax.set_xticks(xs, names, fontsize=7)
    ax.set_ylim(lo - 0.15 * span, hi + 0.15 * span)
    ax.set_ylabel("q(s) (accumulated)" if quantity == "value" else "Q(s) = q/N")
    handles = [Patch(facecolor="#bdbdbd", edgecolor="#606060", label=labels[0])]
    if any(v > 0 for v in va):
        handles.append(Patch(facecolor="#5e3c99", edgecolor="#303030", label=f"{labels[1]} (> 0)"))
    if any(v < 0 for v in va):
        handles.append(Patch(facecolor="#e66101", edgecolor="#303030", label=f"{labels[1]} (< 0)"))
    if all(v == 0 for v in va):
        handles.append(Patch(facecolor="#bdbdbd", edgecolor="#303030", label=f"{labels[1]} (= 0)"))
    ax.legend(handles=handles, fontsize=7, loc="best")
    if title is not None:
        ax.set_title(title, fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def node_table(tree: Tree | dict[str, Any], ids: Iterable[int] | None = None) -> str:
    """A plain-text table "id, depth, N, q, Q, outcome" (all nodes, or ``ids``) to print."""
    recs = _records(tree, None)
    chosen = sorted(recs) if ids is None else [int(i) for i in ids]
    rows = [f"{'id':>4} {'d':>2} {'N':>3} {'q':>7} {'Q':>7}  outcome"]
    for i in chosen:
        r = recs[i]
        rows.append(
            f"{r.id:>4} {r.depth:>2} {r.visits:>3} {r.value:>+7.3f} {r.q:>+7.3f}  "
            + (r.outcome or ("terminal" if r.terminal else "-"))
        )
    return "\n".join(rows)


# ----------------------------------------------------------------------------- training curves


def plot_training(
    history: Sequence[dict[str, Any]],
    title: str = "",
    others: dict[str, Sequence[dict[str, Any]]] | None = None,
    smooth: int = 10,
) -> Any:
    """Training curves of one run (``metrics.jsonl`` rows), optionally with other runs overlaid.

    Panels: the reward of the *sampled* trajectories (``sampled_reward``, moving average over
    ``smooth`` steps; a run with a replay buffer adds a thin dotted line with the cached
    solutions counted, which lift it without the policy finding anything, so only the solid
    lines compare between runs), the share of groups whose samples all had the same outcome (all
    correct or all wrong: no gradient for flat GRPO; a tree's node values still give one),
    held-out pass@1 per evaluation set (colour = set, line style = run). ``others`` maps a
    label to another run's rows, e.g. ``{"grpo": rows}``.
    """
    import matplotlib.pyplot as plt

    runs = {title or "run": list(history), **{k: list(v) for k, v in (others or {}).items()}}
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    set_colours: dict[str, str] = {}
    for r, (label, rows) in enumerate(runs.items()):
        style = styles[r % len(styles)]
        train = [row for row in rows if row.get("kind") == "train"]
        steps = [row["step"] for row in train]
        if train:
            sampled = [row.get("sampled_reward", row["reward"]) for row in train]
            axes[0].plot(steps, _moving_average(sampled, smooth), style, color=f"C{r}",
                         label=label)
            if any(row.get("cached_samples", 0) for row in train):
                axes[0].plot(steps, _moving_average([row["reward"] for row in train], smooth),
                             ":", lw=1, color=f"C{r}", label=f"{label}, cached included")
            ys = [row["zero_signal_share"] for row in train]
            axes[1].plot(steps, _moving_average(ys, smooth), style, color=f"C{r}", label=label)
        evals = [row for row in rows if row.get("kind") == "eval"]
        keys = {k for row in evals for k in row if k.endswith("/pass@1")}
        for name in sorted(k[: -len("/pass@1")] for k in keys):
            colour = set_colours.setdefault(name, f"C{len(set_colours) + 2}")
            pts = [(row["step"], row[f"{name}/pass@1"]) for row in evals if f"{name}/pass@1" in row]
            axes[2].plot(*zip(*pts), style, color=colour, marker="o", ms=3,
                         label=f"{name} ({label})")
    axes[0].set(title=f"reward of sampled trajectories ({smooth}-step average)", xlabel="step")
    axes[1].set(title="groups with one outcome only", xlabel="step", ylim=(-0.02, 1.02))
    axes[2].set(title="held-out pass@1", xlabel="step")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def before_after(history: Sequence[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Held-out set -> (pass@1 at the first evaluation, pass@1 at the last) of one run."""
    evals = [r for r in history if r.get("kind") == "eval"]
    if not evals:
        return {}
    first, last = evals[0], evals[-1]
    return {k[: -len("/pass@1")]: (first[k], last.get(k, float("nan")))
            for k in sorted(first) if k.endswith("/pass@1")}


Runs = Sequence[dict[str, Any]] | Sequence[Sequence[dict[str, Any]]]


def _seeds(runs: Runs) -> list[list[dict[str, Any]]]:
    """One run's rows, or the rows of several seeds, as a list of histories."""
    runs = list(runs)
    return [list(runs)] if not runs or isinstance(runs[0], dict) else [list(r) for r in runs]


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error over seeds (0 for one value)."""
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return statistics.mean(values), se


def plot_before_after(runs: dict[str, Runs], title: str = "") -> Any:
    """Grouped bars: held-out pass@1 per set, before training and after each run.

    ``runs`` maps a label to a run's metrics rows, or to a list of such histories (one per
    seed): bars are then means with error bars of one standard error over the seeds. "before"
    is taken from the first label's runs (all start from the same weights).
    """
    import matplotlib.pyplot as plt

    tables = {label: [before_after(h) for h in _seeds(r)] for label, r in runs.items()}
    first = next(iter(tables.values()), [{}])
    sets = list(first[0]) if first else []
    fig, ax = plt.subplots(figsize=(1.6 + 1.6 * max(1, len(sets)), 3.2))
    width = 0.8 / (len(tables) + 1)
    xs = range(len(sets))
    ms = [_mean_se([t[s][0] for t in first if s in t]) for s in sets]
    ax.bar(list(xs), [m for m, _ in ms], width, yerr=[e for _, e in ms], capsize=3,
           color="tab:gray", label="before")
    for j, (label, seeds) in enumerate(tables.items(), start=1):
        ms = [_mean_se([t[s][1] for t in seeds if s in t] or [0.0]) for s in sets]
        n = f" ({len(seeds)} seeds)" if len(seeds) > 1 else ""
        ax.bar([x + j * width for x in xs], [m for m, _ in ms], width,
               yerr=[e for _, e in ms], capsize=3, color=f"C{j - 1}", label=f"after: {label}{n}")
    ax.set_xticks([x + width * len(tables) / 2 for x in xs], sets)
    ax.set_ylabel("held-out pass@1")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "held-out accuracy per difficulty")
    fig.tight_layout()
    return fig


def plot_eval_vs_tokens(runs: dict[str, Runs], title: str = "") -> Any:
    """Held-out pass@1 against cumulative sampled tokens: one panel per held-out set, a line
    per label (mean over its seeds, shaded band one standard error). The x-axis is what the
    runs spent, so a method ahead at equal compute is the higher line at the same x.

    An evaluation at step s sits at the cumulative sampled tokens of training step s (0 before
    the first step); the k-th evaluations of a label's seeds are averaged together.
    """
    import matplotlib.pyplot as plt

    # set -> label -> per seed: [(tokens, pass@1), ...] in evaluation order
    curves: dict[str, dict[str, list[list[tuple[float, float]]]]] = {}
    for label, r in runs.items():
        for h in _seeds(r):
            spent = {row["step"]: row.get("cumulative_sampled_tokens", 0)
                     for row in h if row.get("kind") == "train"}
            per_set: dict[str, list[tuple[float, float]]] = {}
            for row in h:
                if row.get("kind") == "eval":
                    for k, v in row.items():
                        if k.endswith("/pass@1"):
                            per_set.setdefault(k[: -len("/pass@1")], []).append(
                                (spent.get(row["step"], 0), v))
            for name, pts in per_set.items():
                curves.setdefault(name, {}).setdefault(label, []).append(pts)
    names = sorted(curves)
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.2 * max(1, len(names)), 3.2),
                             squeeze=False)
    for ax, name in zip(axes[0], names):
        for j, (label, seeds) in enumerate(curves[name].items()):
            n = min(len(p) for p in seeds)
            xs = [_mean_se([p[i][0] for p in seeds])[0] for i in range(n)]
            ms = [_mean_se([p[i][1] for p in seeds]) for i in range(n)]
            ys = [m for m, _ in ms]
            ax.plot(xs, ys, "-o", ms=3, color=f"C{j}",
                    label=label + (f" ({len(seeds)} seeds)" if len(seeds) > 1 else ""))
            ax.fill_between(xs, [m - e for m, e in ms], [m + e for m, e in ms],
                            color=f"C{j}", alpha=0.2, lw=0)
        ax.set(title=f"{name}: held-out pass@1", xlabel="sampled tokens")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_rounds(rows: Sequence[dict[str, Any]]) -> Any:
    """Two panels of a rounds run (``dslib.rounds``): the hard set split into cached and
    unsolved problems per round (the paper's Table 6), and sampled vs saved tokens."""
    import matplotlib.pyplot as plt

    r = [row["round"] for row in rows]
    unsolved = [row["unsolved"] for row in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.2))
    a1.bar(r, unsolved, label="unsolved (searched)", color="tab:gray")
    a1.bar(r, [row["cached"] for row in rows], bottom=unsolved,
           label="cached (skip the search)", color="tab:green")
    a1.set(xlabel="round", ylabel="problems in the hard set", xticks=r,
           title="the hard set shrinks, the cache grows")
    sampled = [row["savings"]["sampled_tokens"] for row in rows]
    a2.bar(r, sampled, label="sampled", color="tab:blue")
    a2.bar(r, [row["savings"]["saved_tokens"] for row in rows], bottom=sampled,
           label="saved by the cache (est.)", color="tab:green", alpha=0.6)
    a2.set(xlabel="round", ylabel="tokens", xticks=r, title="sampled tokens per round")
    for ax in (a1, a2):
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over up to ``window`` values (the first points average what exists)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out
