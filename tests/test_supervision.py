"""Terminal choice (docs/paper-notes.md#which-terminal, #entropy, v4 Eq. 1-2): class order, entropy,
switches."""

import random

import pytest

from dslib.supervision import choose_terminal, partition, to_back_up, trajectory_entropy
from dslib.tree import Tree


@pytest.fixture()
def leaves():
    # root -> p (depth 1, two tokens at -log p = 1) -> terminal leaves of two tokens each.
    # trajectory entropy = mean over all 4 response tokens = (1 + 1 + 2h) / 4
    t = Tree([7])
    p = t.add_child(t.root, [1, 1], [-1.0, -1.0], entropies=[0.5, 0.5])

    def leaf(h, score, outcome):
        node = t.add_child(
            p, [2, 0], [-h, -h], finished=True, terminal=True, entropies=[h / 2, h / 2]
        )
        node.score, node.outcome = score, outcome
        return node

    return {
        "c1": leaf(2.0, 1.0, "correct"),  # 1.5
        "c2": leaf(0.5, 1.0, "correct"),  # 0.75
        "w1": leaf(0.2, -1.0, "wrong"),  # 0.6
        "w2": leaf(3.0, -1.0, "wrong"),  # 2.0
        "w3": leaf(1.0, -1.0, "wrong"),  # 1.0
        "i1": leaf(0.1, -1.0, "incomplete"),  # 0.55, incomplete_score -1: lumped with wrong
        "i2": leaf(0.4, -0.5, "incomplete"),  # 0.7, incomplete_score -0.5: "other"
        "i3": leaf(0.3, -0.5, "incomplete"),  # 0.65
    }


def test_trajectory_entropy_is_token_level_mean_over_whole_path(leaves):
    assert trajectory_entropy(leaves["c1"]) == pytest.approx(1.5)
    assert trajectory_entropy(leaves["w1"]) == pytest.approx(0.6)
    t = Tree([7])
    p = t.add_child(t.root, [1, 1, 1], [-1.0, -1.0, -1.0])
    leaf = t.add_child(p, [0], [-3.0])
    # token mean (1+1+1+3)/4 = 1.5, not the per-step mean (1+3)/2 = 2
    assert trajectory_entropy(leaf) == pytest.approx(1.5)
    assert trajectory_entropy(t.root) == 0.0


def test_shannon_entropy_and_clear_error_without_entropies(leaves):
    # entropies: p [0.5, 0.5], c1 [1, 1] -> mean 0.75
    assert trajectory_entropy(leaves["c1"], "shannon") == pytest.approx(0.75)
    t = Tree([7])
    leaf = t.add_child(t.root, [0], [-1.0])
    with pytest.raises(ValueError, match="shannon"):
        trajectory_entropy(leaf, "shannon")
    with pytest.raises(ValueError):
        trajectory_entropy(leaf, "nope")


def test_correct_first_then_lowest_entropy(leaves):
    got = choose_terminal([leaves["c1"], leaves["w1"], leaves["c2"]])
    assert got is leaves["c2"]  # w1 has lower entropy but correct wins


def test_wrong_before_other(leaves):
    assert choose_terminal([leaves["i2"], leaves["w3"]]) is leaves["w3"]
    assert choose_terminal([leaves["i2"], leaves["i3"]]) is leaves["i3"]  # other: lowest entropy
    assert partition([leaves["i2"], leaves["i3"]])[0] == "other"


def test_incomplete_with_score_minus_one_is_lumped_with_wrong(leaves):
    assert partition([leaves["w3"], leaves["i1"]]) == ("wrong", [leaves["w3"], leaves["i1"]])
    assert choose_terminal([leaves["w3"], leaves["i1"]]) is leaves["i1"]


def test_negative_choice_switch(leaves):
    wrong = [leaves["w3"], leaves["w1"], leaves["w2"]]
    assert choose_terminal(wrong, "most_confident") is leaves["w1"]
    assert choose_terminal(wrong, "least_confident") is leaves["w2"]
    expected = wrong[random.Random(5).randrange(3)]
    assert choose_terminal(wrong, "random", rng=random.Random(5)) is expected
    picks = {choose_terminal(wrong, "random", rng=random.Random(s)).id for s in range(30)}
    assert len(picks) == 3
    with pytest.raises(ValueError):
        choose_terminal(wrong, "nope")


def test_negative_choice_never_touches_correct_or_other(leaves):
    correct = [leaves["c1"], leaves["c2"]]
    assert choose_terminal(correct, "least_confident") is leaves["c2"]
    assert choose_terminal(correct, "random", rng=random.Random(0)) is leaves["c2"]
    other = [leaves["i2"], leaves["i3"]]
    assert choose_terminal(other, "least_confident") is leaves["i3"]


def test_shannon_switch_can_change_the_choice():
    t = Tree([7])
    a = t.add_child(t.root, [0], [-0.1], terminal=True, entropies=[2.0])
    b = t.add_child(t.root, [0], [-1.0], terminal=True, entropies=[0.5])
    a.score = b.score = -1.0
    assert choose_terminal([a, b]) is a  # sampled NLL 0.1 < 1.0
    assert choose_terminal([a, b], entropy="shannon") is b  # Shannon 0.5 < 2.0


def test_ties_go_to_the_first_candidate():
    t = Tree([7])
    a = t.add_child(t.root, [0], [-1.0], terminal=True)
    b = t.add_child(t.root, [0], [-1.0], terminal=True)
    a.score = b.score = -1.0
    assert choose_terminal([a, b]) is a
    assert choose_terminal([b, a]) is b
    assert choose_terminal([a, b], "least_confident") is a


def test_backup_terminals_switch(leaves):
    cands = [leaves["c1"], leaves["w1"], leaves["c2"]]
    assert to_back_up(cands, "one") == [leaves["c2"]]
    assert to_back_up(cands, "all_correct") == [leaves["c2"], leaves["c1"]]  # lowest entropy first
    wrong = [leaves["w2"], leaves["w1"]]
    assert to_back_up(wrong, "all_correct") == [leaves["w1"]]  # no correct: one, as the code
    with pytest.raises(ValueError):
        to_back_up(cands, "nope")


def test_errors():
    with pytest.raises(ValueError):
        choose_terminal([])
    t = Tree([7])
    unscored = t.add_child(t.root, [0], terminal=True)
    with pytest.raises(ValueError, match="no score"):
        choose_terminal([unscored])
