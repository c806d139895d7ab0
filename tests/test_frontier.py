"""Global frontier (docs/paper-notes.md#frontier, v4 Eq. 6-7): candidates, priority terms, ties,
widths."""

import math

import pytest

from dslib import frontier
from dslib.config import SearchConfig
from dslib.frontier import PriorityTerms
from dslib.tree import Tree


def example():
    #  root  value 0.8, N 4  -> Q 0.2
    #  |- a  depth 1, value -0.5, N 2 -> Q -0.25   (expanded)
    #  |   |- c  depth 2, N 1, logprobs [-1, -3] -> H = 2.0
    #  |   `- d  terminal
    #  `- b  depth 1, value 0.3, N 1 -> Q 0.3, logprobs [-0.5] -> H = 0.5
    t = Tree([9])
    t.root.value, t.root.visits = 0.8, 4
    a = t.add_child(t.root, [1])
    a.value, a.visits = -0.5, 2
    c = t.add_child(a, [2, 3], [-1.0, -3.0])
    c.visits = 1
    t.add_child(a, [4], terminal=True)
    b = t.add_child(t.root, [5], [-0.5])
    b.value, b.visits = 0.3, 1
    return t, a, b, c


def test_candidates_are_unexpanded_non_terminal_non_root_in_preorder():
    t, a, b, c = example()
    assert frontier.candidates(t) == [c, b]
    assert frontier.candidates(t, SearchConfig(width=2, max_depth=4)) == [c, b]
    assert frontier.candidates(Tree([1])) == []


def test_default_terms_sqrt_depth_bonus():
    t, a, b, c = example()
    cfg = SearchConfig(width=2, max_depth=4)
    tb = frontier.priority(b, cfg)
    assert tb.quality == pytest.approx(0.4 * math.tanh(0.2))
    assert tb.own == 0.0 and tb.uncertainty == 0.0
    assert tb.depth == pytest.approx(0.01 * math.sqrt(1 / 4))
    tc = frontier.priority(c, cfg)
    assert tc.quality == pytest.approx(0.4 * math.tanh(-0.25))
    assert tc.depth == pytest.approx(0.01 * math.sqrt(2 / 4))
    assert tc.total == pytest.approx(0.4 * math.tanh(-0.25) + 0.01 * math.sqrt(0.5))
    assert frontier.select(t, cfg) is b  # positive parent Q beats the failed branch


@pytest.mark.parametrize(
    "kind, d1, d2",
    [
        ("sqrt", math.sqrt(1 / 4), math.sqrt(2 / 4)),
        ("log", math.log(2), math.log(3)),
        ("linear", 1.0, 2.0),
        ("constant", 1.0, 2.0),
    ],
)
def test_each_depth_bonus(kind, d1, d2):
    t, a, b, c = example()
    cfg = SearchConfig(width=2, max_depth=4, depth_bonus=kind, lambda3=0.5)
    assert frontier.priority(b, cfg).depth == pytest.approx(0.5 * d1)
    assert frontier.priority(c, cfg).depth == pytest.approx(0.5 * d2)


def test_entropy_bonus_uses_own_chunk_mean_nll_and_can_flip_the_choice():
    t, a, b, c = example()
    off = SearchConfig(width=2, max_depth=4, entropy_bonus=False)
    on = SearchConfig(width=2, max_depth=4, entropy_bonus=True)
    assert frontier.priority(c, off).uncertainty == 0.0
    assert frontier.priority(c, on).uncertainty == pytest.approx(0.4 * 2.0)
    assert frontier.priority(b, on).uncertainty == pytest.approx(0.4 * 0.5)
    # c: -0.0980 + 0.8 + 0.0071 = 0.7091 > b: 0.0789 + 0.2 + 0.005 = 0.2839
    assert frontier.priority(c, on).total == pytest.approx(0.7091, abs=1e-4)
    assert frontier.priority(b, on).total == pytest.approx(0.2839, abs=1e-4)
    assert frontier.select(t, on) is c
    assert frontier.chunk_nll(Tree([1]).root) == 0.0


def test_lambda4_own_quality_term_only_when_positive():
    t, a, b, c = example()
    on = SearchConfig(width=2, max_depth=4, lambda4=0.5)
    assert frontier.priority(b, on).own == pytest.approx(0.5 * math.tanh(0.3))
    assert frontier.priority(c, on).own == 0.0  # Q(c) = 0
    negative = SearchConfig(width=2, max_depth=4, lambda4=-1.0)
    assert frontier.priority(b, negative).own == 0.0  # the code adds it only when lambda4 > 0


def test_total_sums_the_terms():
    assert PriorityTerms(0.1, 0.2, 0.3, 0.4).total == pytest.approx(1.0)


def test_ties_go_to_the_first_node_in_dfs_preorder():
    t = Tree([0])
    t.root.visits = 1
    a1 = t.add_child(t.root, [1])
    a2 = t.add_child(t.root, [2])
    a1.visits = a2.visits = 1
    x = t.add_child(a1, [3])
    y = t.add_child(a2, [4])
    x.visits = y.visits = 1
    cfg = SearchConfig(width=1, max_depth=8)
    assert frontier.candidates(t, cfg) == [x, y]
    assert frontier.priority(x, cfg).total == frontier.priority(y, cfg).total
    assert frontier.select(t, cfg) is x
    # siblings at depth 1 tie too: the first wins
    t2 = Tree([0])
    s1, _ = t2.add_child(t2.root, [1]), t2.add_child(t2.root, [2])
    assert frontier.select(t2, cfg) is s1


def test_empty_frontier_gives_none():
    t = Tree([0])
    t.add_child(t.root, [1], terminal=True)
    assert frontier.select(t, SearchConfig()) is None


def test_root_has_no_priority():
    with pytest.raises(ValueError):
        frontier.priority(Tree([0]).root, SearchConfig())


def test_dynamic_width_formula():
    fixed = SearchConfig(width=8, max_depth=64)
    assert [frontier.expansion_width(d, fixed) for d in (0, 30, 63)] == [8, 8, 8]
    # step = 64 // 8 = 8; width(d) = max(2, 8 - (d // 8) * 1)
    dyn = SearchConfig(width=8, max_depth=64, dynamic_width=(2, 1))
    assert [frontier.expansion_width(d, dyn) for d in (0, 7, 8, 20, 47, 63)] == [8, 8, 7, 6, 3, 2]
    # step = 16 // 4 = 4; decay 3
    dyn3 = SearchConfig(width=4, max_depth=16, dynamic_width=(1, 3))
    assert [frontier.expansion_width(d, dyn3) for d in (0, 3, 4, 8)] == [4, 4, 1, 1]
    # d_T < W: the code divides by zero; the step is clamped to 1
    small = SearchConfig(width=4, max_depth=3, dynamic_width=(1, 1))
    assert [frontier.expansion_width(d, small) for d in (0, 1, 2)] == [4, 3, 2]


def test_dynamic_width_candidates_use_the_width_at_their_depth():
    t = Tree([0])
    a = t.add_child(t.root, [1])
    t.add_child(a, [2])
    cfg = SearchConfig(width=2, max_depth=4, dynamic_width=(1, 0))  # width 2 everywhere
    assert a in frontier.candidates(t, cfg)  # 1 child < 2
    assert a not in frontier.candidates(t)  # without cfg: has children -> expanded
