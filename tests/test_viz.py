"""Drawings (dslib.viz): the tree drawings return an Axes, the run plots a Figure; each draws
what it promises."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from fakes import FakeProblem, ScriptedPolicy, fake_verifier  # noqa: E402

from dslib import backup, frontier, search, viz  # noqa: E402
from dslib.config import SearchConfig  # noqa: E402
from dslib.tree import Tree  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def hand_tree():
    """root -> a, b; a -> a1 (inner), a2 (wrong, backed up); b -> b1 (correct)."""
    t = Tree([1, 2, 3])
    a = t.add_child(t.root, [5, 6], [-0.5, -0.5])
    b = t.add_child(t.root, [7, 8], [-1.0, -1.0])
    a.visits = b.visits = 1
    a1 = t.add_child(a, [9], [-0.2])
    a1.visits = 1
    a2 = t.add_child(a, [10, 0], [-0.1, -0.1], finished=True, terminal=True)
    a2.score, a2.outcome = -1.0, "wrong"
    b1 = t.add_child(b, [11, 0], [-0.3, -0.3], finished=True, terminal=True)
    b1.score, b1.outcome = 1.0, "correct"
    return t, {"a": a, "b": b, "a1": a1, "a2": a2, "b1": b1}


def fake_search_tree(n_trajectories=6, seed=3):
    cfg = SearchConfig.tiny(n_trajectories=n_trajectories)
    policy = ScriptedPolicy(seed=seed, p_eos=0.08, p_correct=0.3)
    (res,) = search.run([FakeProblem([100, 7])], policy, fake_verifier, cfg)
    return res.tree, cfg


def collections_by_gid(ax):
    out = {}
    for coll in ax.collections:
        gid = coll.get_gid()
        if gid is not None:
            out[gid] = out.get(gid, 0) + len(coll.get_offsets())
    return out


def n_node_markers(ax):
    counts = collections_by_gid(ax)
    return counts.get(viz.GID_NODES, 0) + counts.get(viz.GID_TERMINALS, 0)


def test_draw_tree_hand_built_marks_every_node_and_the_rings():
    t, n = hand_tree()
    backup.backup(n["a2"], -1.0)
    n["a2"].backed_up = True
    choice = frontier.select(t, SearchConfig.tiny())
    ax = viz.draw_tree(
        t, highlight=n["a2"], frontier_choice=choice, negative=n["a2"],
        decode=lambda ids: " ".join(map(str, ids)),
    )
    assert isinstance(ax, plt.Axes)
    counts = collections_by_gid(ax)
    assert n_node_markers(ax) == t.n_nodes
    assert counts[viz.GID_TERMINALS] == 2
    assert counts[viz.GID_HIGHLIGHT] == 1
    assert counts[viz.GID_FRONTIER] == 1
    assert counts[viz.GID_NEGATIVE] == 1
    texts = [txt.get_text() for txt in ax.texts]
    assert any("N=2" in s for s in texts)  # labels on a small tree
    assert "10 0" in texts  # decoded chunk of a2


def test_draw_tree_layout_centres_parents_and_spaces_leaves():
    t, n = hand_tree()
    pos = viz.tree_layout(t)
    leaves = sorted(x for nid, (x, _) in pos.items() if nid in (3, 4, 5))
    assert leaves == [0.0, 1.0, 2.0]
    assert pos[n["a"].id][0] == pytest.approx(0.5)  # centred over a1, a2
    assert pos[0][0] == pytest.approx((0.5 + 2.0) / 2)
    assert all(y == -float(d) for (_, y), d in zip(
        [pos[i] for i in range(6)], [0, 1, 1, 2, 2, 2]))


def test_draw_tree_on_a_search_tree_and_its_snapshot():
    tree, cfg = fake_search_tree()
    snap = tree.to_dict()
    fig, (ax1, ax2) = plt.subplots(1, 2)
    choice = frontier.select(tree, cfg)
    out1 = viz.draw_tree(tree, ax1, highlight=tree.recorded, frontier_choice=choice)
    out2 = viz.draw_tree(snap, ax2, highlight=[leaf.id for leaf in tree.recorded])
    assert out1 is ax1 and out2 is ax2
    assert n_node_markers(ax1) == n_node_markers(ax2) == tree.n_nodes
    assert collections_by_gid(ax1)[viz.GID_HIGHLIGHT] == len(tree.recorded)
    assert collections_by_gid(ax2)[viz.GID_HIGHLIGHT] == len(tree.recorded)


def test_draw_tree_max_nodes_cuts_and_says_so():
    tree, _ = fake_search_tree()
    ax = viz.draw_tree(tree, max_nodes=10, labels=False)
    assert n_node_markers(ax) == 10
    assert "not drawn" in ax.get_title()


def test_draw_tree_scales_to_a_hundred_nodes_without_labels():
    tree, _ = fake_search_tree(n_trajectories=30, seed=5)
    assert tree.n_nodes >= 80
    ax = viz.draw_tree(tree, highlight=tree.recorded)
    assert n_node_markers(ax) == tree.n_nodes
    assert not any(txt.get_text().startswith("N=") for txt in ax.texts)


def test_frontier_terms_bars_and_winner():
    tree, cfg = fake_search_tree()
    ranked = frontier.ranked(tree, cfg)
    assert ranked, "the fake search leaves a non-empty frontier"
    ax = viz.plot_frontier_terms(tree, cfg, top=4)
    assert isinstance(ax, plt.Axes)
    shown = min(4, len(ranked))
    assert len(ax.get_yticks()) == shown
    best = frontier.select(tree, cfg)
    labels = [lbl.get_text() for lbl in ax.get_yticklabels()]
    assert sum("s*" in s for s in labels) == 1
    assert any("s*" in s and f"#{best.id} " in s for s in labels), labels
    # dict input (no log-probs: no entropy term), and the entropy bonus on a Tree
    cfg2 = SearchConfig.tiny(entropy_bonus=True, depth_bonus="linear")
    ax2 = viz.plot_frontier_terms(tree.to_dict(), cfg2, top=3)
    legend = [txt.get_text() for txt in ax2.get_legend().get_texts()]
    assert any("depth" in s for s in legend) and not any("uncertainty" in s for s in legend)
    ax3 = viz.plot_frontier_terms(tree, cfg2, top=3)
    assert any("uncertainty" in txt.get_text() for txt in ax3.get_legend().get_texts())


def test_frontier_terms_empty_frontier():
    t = Tree([1])
    leaf = t.add_child(t.root, [0], finished=True, terminal=True)
    leaf.score, leaf.outcome = 1.0, "correct"
    ax = viz.plot_frontier_terms(t, SearchConfig.tiny())
    assert isinstance(ax, plt.Axes)


def test_tree_from_dict_round_trip():
    tree, cfg = fake_search_tree()
    snap = tree.to_dict(include_tokens=True)
    rebuilt = viz.tree_from_dict(snap)
    assert rebuilt.to_dict(include_tokens=True) == snap
    assert frontier.select(rebuilt, cfg).id == frontier.select(tree, cfg).id


def test_q_before_after_snapshots_lists_and_paths():
    t, n = hand_tree()
    before = t.to_dict()
    backup.backup(n["a2"], -1.0)
    after = t.to_dict()
    ax = viz.plot_q_before_after(before, after)
    assert isinstance(ax, plt.Axes)
    labels = [lbl.get_text() for lbl in ax.get_xticklabels()]
    assert len(labels) == 3 and "root" in labels[0]  # root, a, a2: the changed path
    bars = [p.get_height() for p in ax.patches]
    assert bars[3:] == pytest.approx([-1 / 3, -2 / 3, -1.0])  # after: gamma (d+1)/(L+1)
    ax2 = viz.plot_q_before_after(before, after, path=n["b1"], quantity="q")
    assert len(ax2.get_xticklabels()) == 3
    ax3 = viz.plot_q_before_after([0.0, 0.5], [0.2, -0.1])
    assert [p.get_height() for p in ax3.patches] == pytest.approx([0.0, 0.5, 0.2, -0.1])
    with pytest.raises(ValueError):
        viz.plot_q_before_after(before, before)
    with pytest.raises(ValueError):
        viz.plot_q_before_after([0.0], [0.0, 1.0])


def test_node_table_lists_nodes():
    t, _ = hand_tree()
    rows = viz.node_table(t).splitlines()
    assert len(rows) == 1 + t.n_nodes
    assert "correct" in viz.node_table(t.to_dict(), ids=[5])


def _run(before: float, after: float, tokens: int, cached: int = 0) -> list[dict]:
    train = [{"kind": "train", "step": s, "reward": 0.5 if cached else -0.5,
              "sampled_reward": -0.5, "cached_samples": cached, "zero_signal_share": 0.5,
              "cumulative_sampled_tokens": tokens * s} for s in (1, 2)]
    return [{"kind": "eval", "step": 0, "L4/pass@1": before, "L5/pass@1": before / 2},
            *train, {"kind": "eval", "step": 2, "L4/pass@1": after, "L5/pass@1": after / 2}]


def test_plot_training_draws_cached_reward_apart():
    fig = viz.plot_training(_run(0.1, 0.2, 10, cached=3), title="ds",
                            others={"grpo": _run(0.1, 0.3, 5)})
    reward = fig.axes[0]
    labels = [line.get_label() for line in reward.get_lines()]
    assert labels == ["ds", "ds, cached included", "grpo"]
    # the solid line is the sampled reward (-0.5), the dotted one counts the cached (+0.5)
    assert list(reward.get_lines()[0].get_ydata()) == [-0.5, -0.5]
    assert list(reward.get_lines()[1].get_ydata()) == [0.5, 0.5]


def test_plot_before_after_error_bars_over_seeds():
    seeds = [_run(0.1, 0.2, 10), _run(0.1, 0.4, 10)]
    fig = viz.plot_before_after({"ds": seeds, "grpo": _run(0.1, 0.3, 5)})
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    # before 0.1/0.05; ds after mean 0.3/0.15; grpo after 0.3/0.15 (one run, no error bar)
    assert heights == [0.05, 0.1, 0.15, 0.15, 0.3, 0.3]
    assert "after: ds (2 seeds)" in [t.get_text() for t in ax.get_legend().get_texts()]
    caps = [c for c in ax.containers if getattr(c, "errorbar", None) is not None]
    ds_err = caps[1].errorbar.lines[2][0].get_segments()  # L4 bar: 0.3 ± s.e. 0.1
    assert ds_err[0][:, 1] == pytest.approx([0.2, 0.4])


def test_plot_eval_vs_tokens_means_over_seeds_at_spent_tokens():
    fig = viz.plot_eval_vs_tokens({"ds": [_run(0.1, 0.2, 10), _run(0.1, 0.4, 20)],
                                   "grpo": _run(0.1, 0.3, 5)})
    l4 = fig.axes[0]
    assert l4.get_title() == "L4: held-out pass@1" and len(fig.axes) == 2
    ds, grpo = l4.get_lines()
    assert list(ds.get_xdata()) == [0, 30] and list(ds.get_ydata()) == pytest.approx([0.1, 0.3])
    assert list(grpo.get_xdata()) == [0, 10] and ds.get_label() == "ds (2 seeds)"
