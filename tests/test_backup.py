"""Score backup (docs/paper-notes.md#backup, v4 Eq. 3-5): gamma variants, sign rule, vanilla
rule."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dslib import backup as bk
from dslib.tree import Tree


def chain(depth):
    t = Tree([0])
    nodes = [t.root]
    for d in range(depth):
        nodes.append(t.add_child(nodes[-1], [d + 1], terminal=d == depth - 1))
    return t, nodes


def test_gamma_code_and_paper_for_a_leaf_at_depth_3():
    assert [bk.gamma(d, 3) for d in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert [bk.gamma(d, 3, mode="paper") for d in range(4)] == pytest.approx(
        [0.1, 1 / 3, 2 / 3, 1.0]  # root: 0/3 floored at gamma_min
    )


def test_gamma_floor_and_edge_cases():
    assert bk.gamma(0, 19) == pytest.approx(0.1)  # 1/20 = 0.05 -> floored
    assert bk.gamma(0, 19, gamma_min=0.0) == pytest.approx(0.05)
    assert bk.gamma(1, 19, mode="paper") == pytest.approx(0.1)  # 1/19 -> floored
    assert bk.gamma(0, 0, mode="paper") == 1.0  # no division by zero
    with pytest.raises(ValueError):
        bk.gamma(1, 2, mode="nope")


@pytest.mark.parametrize(
    "q_old, g, r, expected, case",
    [
        (0.5, 0.5, 1.0, 1.0, "agree: positive accumulates"),
        (-0.5, 0.5, -1.0, -1.0, "agree: negative accumulates"),
        (0.0, 0.25, -1.0, -0.25, "zero start takes a negative"),
        (0.0, 0.25, 1.0, 0.25, "zero start takes a positive"),
        (-0.7, 0.5, 1.0, 0.5, "negative node on a correct path: overwritten by g*r"),
        (0.3, 0.5, -1.0, 0.3, "positive node ignores a negative signal"),
        (-0.3, 0.5, 0.0, -0.3, "r = 0 changes nothing (the code's value != 0 guard)"),
        (0.3, 0.5, -0.5, 0.3, "incomplete_score -0.5 is a negative signal"),
    ],
)
def test_constrained_rule(q_old, g, r, expected, case):
    assert bk.update_value(q_old, g, r) == pytest.approx(expected), case


@pytest.mark.parametrize(
    "q_old, g, r, expected",
    [
        (0.5, 0.5, 1.0, 1.0),  # same sign: add
        (-0.5, 0.5, -1.0, -1.0),
        (-0.7, 0.5, 1.0, 0.0),  # max(-0.2, 0)
        (-0.2, 1.0, 1.0, 0.8),  # max(0.8, 0)
        (0.3, 0.5, -1.0, 0.0),  # max(-0.2, 0): a positive node is pulled down
        (0.3, 0.2, -1.0, 0.1),
    ],
)
def test_vanilla_rule(q_old, g, r, expected):
    assert bk.update_value_vanilla(q_old, g, r) == pytest.approx(expected)


def test_backup_updates_every_node_root_to_leaf_with_code_gamma():
    t, (root, a, b, c) = chain(3)
    a.value, a.visits = -0.4, 2
    b.value, b.visits = 0.2, 1
    path = bk.backup(c, 1.0)
    assert path == [root, a, b, c]
    assert [n.value for n in path] == pytest.approx([0.25, 0.5, 0.95, 1.0])
    assert [n.visits for n in path] == [1, 3, 2, 1]


def test_backup_sequence_wrong_then_correct_then_wrong():
    t, (root, a, b, c) = chain(3)
    bk.backup(c, -1.0)
    assert [n.value for n in (root, a, b, c)] == pytest.approx([-0.25, -0.5, -0.75, -1.0])
    c2 = t.add_child(b, [9], terminal=True)
    bk.backup(c2, 1.0)  # every ancestor is negative -> overwritten by gamma * 1
    assert [n.value for n in (root, a, b, c2)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    e = t.add_child(a, [8], terminal=True)
    bk.backup(e, -1.0)  # positive ancestors ignore it, the fresh leaf takes -1
    assert [n.value for n in (root, a, e)] == pytest.approx([0.25, 0.5, -1.0])
    assert [n.visits for n in (root, a, b, c, c2, e)] == [3, 3, 2, 1, 1, 1]


def test_backup_paper_gamma_and_vanilla_rule():
    t, (root, a, b, c) = chain(3)
    bk.backup(c, -1.0, mode="paper")
    assert [n.value for n in (root, a, b, c)] == pytest.approx([-0.1, -1 / 3, -2 / 3, -1.0])
    c2 = t.add_child(b, [9], terminal=True)
    bk.backup(c2, 1.0, mode="paper", rule="vanilla")
    # max(q + g, 0): root -0.1 + 0.1 = 0, a -1/3 + 1/3 = 0, b -2/3 + 2/3 = 0, c2 = 1
    assert [n.value for n in (root, a, b, c2)] == pytest.approx([0.0, 0.0, 0.0, 1.0])
    with pytest.raises(ValueError):
        bk.backup(c2, 1.0, rule="nope")


@st.composite
def trees_and_backups(draw):
    n = draw(st.integers(2, 12))
    parents = [draw(st.integers(0, i - 1)) for i in range(1, n)]
    incomplete = draw(st.sampled_from([-1.0, -0.5, 0.0]))
    events = draw(
        st.lists(
            st.tuples(st.integers(1, n - 1), st.sampled_from([1.0, -1.0, incomplete])),
            max_size=25,
        )
    )
    mode = draw(st.sampled_from(["code", "paper"]))
    return parents, events, mode


@settings(max_examples=150, deadline=None)
@given(trees_and_backups())
def test_property_correct_path_nodes_never_negative_and_visits_count_backups(data):
    parents, events, mode = data
    t = Tree([0])
    nodes = [t.root]
    for p in parents:
        nodes.append(t.add_child(nodes[p], [len(nodes)]))
    ever_correct: set[int] = set()
    through = [0] * len(nodes)
    for leaf_index, score in events:
        path = bk.backup(nodes[leaf_index], score, mode=mode)
        for node in path:
            through[node.id] += 1
        if score > 0:
            ever_correct.update(node.id for node in path)
        assert all(nodes[i].value >= 0 for i in ever_correct)
    assert [n.visits for n in nodes] == through
