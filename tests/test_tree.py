"""Node / Tree basics: paths, prefixes, DFS pre-order, to_dict (docs/paper-notes.md#notation,
#node)."""

import json

import pytest

from dslib.tree import Node, Tree


def small_tree() -> tuple[Tree, dict[str, Node]]:
    #        root [10, 11]
    #        /          \
    #     a [1, 2]     b [3]
    #     /     \
    #  c [4]   d [5, 6] (finished, terminal)
    t = Tree([10, 11])
    a = t.add_child(t.root, [1, 2], [-0.5, -1.0])
    b = t.add_child(t.root, [3], [-0.25])
    c = t.add_child(a, [4], [-2.0])
    d = t.add_child(a, [5, 6], [-0.1, -0.2], finished=True, terminal=True)
    return t, {"a": a, "b": b, "c": c, "d": d}


def test_ids_depths_and_paths():
    t, n = small_tree()
    assert [t.root.id, n["a"].id, n["b"].id, n["c"].id, n["d"].id] == [0, 1, 2, 3, 4]
    assert t.n_nodes == 5
    assert [t.root.depth, n["a"].depth, n["c"].depth] == [0, 1, 2]
    assert n["d"].path() == [t.root, n["a"], n["d"]]
    assert n["d"].prefix_ids() == [10, 11, 1, 2, 5, 6]
    assert n["d"].response_ids() == [1, 2, 5, 6]
    assert n["d"].response_logprobs() == [-0.5, -1.0, -0.1, -0.2]
    assert t.root.response_ids() == []
    assert t.root.prefix_ids() == [10, 11]
    assert t.root.is_root and not n["a"].is_root


def test_q_is_value_over_visits_and_zero_without_visits():
    node = Node(token_ids=[1])
    assert node.q == 0.0
    node.value, node.visits = 1.5, 3
    assert node.q == pytest.approx(0.5)


def test_nodes_are_dfs_preorder():
    t, n = small_tree()
    assert [x.id for x in t.nodes()] == [0, 1, 3, 4, 2]


def test_add_child_defaults_and_checks():
    t = Tree([1])
    child = t.add_child(t.root, [7, 8])
    assert child.logprobs == [0.0, 0.0] and child.entropies is None
    with pytest.raises(ValueError, match="log-probs"):
        t.add_child(t.root, [1, 2], [-1.0])


def test_to_dict_is_json_serialisable_and_complete():
    t, n = small_tree()
    n["d"].score, n["d"].outcome = 1.0, "correct"
    n["a"].value, n["a"].visits = 0.5, 2
    t.recorded.append(n["d"])
    d = t.to_dict(decode=lambda ids: " ".join(map(str, ids)), include_tokens=True)
    back = json.loads(json.dumps(d))
    assert back == d
    by_id = {e["id"]: e for e in d["nodes"]}
    assert by_id[0]["parent"] is None and by_id[3]["parent"] == 1
    assert by_id[1]["q"] == 0.25 and by_id[1]["visits"] == 2
    assert by_id[4]["score"] == 1.0 and by_id[4]["terminal"] and by_id[4]["n_tokens"] == 2
    assert by_id[4]["text"] == "5 6" and by_id[4]["token_ids"] == [5, 6]
    assert d["recorded"] == [4] and d["current"] == 0
    assert not d["exhausted"]


def test_repr_is_not_recursive():
    t, n = small_tree()
    assert "id=1" in repr(n["a"])
