"""UCT (docs/paper-notes.md#uct): values, the u = 0 convention, terminal exclusion, ties,
softmax."""

import math
import random

import pytest

from dslib import uct
from dslib.tree import Tree


def parent_with(values_visits, parent_visits, terminal=()):
    t = Tree([0])
    t.root.visits = parent_visits
    kids = []
    for i, (v, n) in enumerate(values_visits):
        k = t.add_child(t.root, [i + 1], terminal=i in terminal)
        k.value, k.visits = v, n
        kids.append(k)
    return t.root, kids


def test_score_hand_computed():
    _, (a, b) = parent_with([(1.0, 2), (0.0, 1)], parent_visits=4)
    # Q = 0.5, u = 2 * sqrt(ln 4 / 2)
    assert uct.score(a) == pytest.approx(0.5 + 2 * math.sqrt(math.log(4) / 2))
    assert uct.score(b, c=1.0) == pytest.approx(math.sqrt(math.log(4)))


def test_exploration_is_zero_when_counts_are_zero():
    _, (a,) = parent_with([(0.0, 0)], parent_visits=5)
    assert uct.score(a) == 0.0  # N = 0: u = 0 (code), not +inf
    _, (b,) = parent_with([(0.6, 2)], parent_visits=0)
    assert uct.score(b) == pytest.approx(0.3)  # N_parent = 0: u = 0
    _, (c,) = parent_with([(0.0, 1)], parent_visits=1)
    assert uct.score(c) == 0.0  # ln 1 = 0


def test_terminal_scores_minus_inf_and_is_never_selected():
    root, (a, b) = parent_with([(5.0, 1), (0.0, 1)], parent_visits=2, terminal={0})
    assert uct.score(a) == -math.inf
    assert uct.select(root) is b


def test_first_child_wins_ties():
    root, kids = parent_with([(0.0, 1)] * 4, parent_visits=3)
    assert uct.select(root) is kids[0]


def test_argmax_picks_the_best():
    root, kids = parent_with([(0.0, 1), (0.9, 1), (0.9, 1)], parent_visits=3)
    assert uct.select(root) is kids[1]


def test_none_when_no_non_terminal_child():
    root, _ = parent_with([(0.0, 0), (0.0, 0)], parent_visits=1, terminal={0, 1})
    assert uct.select(root) is None
    assert uct.select(Tree([1]).root) is None


def test_softmax_sampling_is_seeded_and_follows_probabilities():
    root, kids = parent_with(
        [(0.0, 1), (math.log(3.0), 1), (9.0, 1)], parent_visits=1, terminal={2}
    )
    # parent N = 1 -> u = 0; UCT = [0, ln 3] over the non-terminal kids -> probs [0.25, 0.75]
    assert uct.softmax([0.0, math.log(3.0)]) == pytest.approx([0.25, 0.75])
    rng = random.Random(0)
    first = random.Random(0).random()  # the one draw select() makes
    expected = kids[0] if first < 0.25 else kids[1]
    assert uct.select(root, deterministic=False, rng=rng) is expected
    picks = [uct.select(root, deterministic=False, rng=random.Random(s)) for s in range(400)]
    share = sum(p is kids[1] for p in picks) / len(picks)
    assert 0.68 < share < 0.82
    assert all(p is not kids[2] for p in picks)
    again = [uct.select(root, deterministic=False, rng=random.Random(s)) for s in range(400)]
    assert again == picks
