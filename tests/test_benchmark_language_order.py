"""The language-confusion figures of benchmarks/language_order.py on hand-made readings."""

import pytest
from test_benchmark_perf import benchmark

A = ("TOMORROW", "STORE", "I", "GO")  # ssl-a order
B = ("I", "TOMORROW", "STORE", "GO")  # ssl-b order: the same glosses


def row(requested, read_a, read_b, refs=None):
    return {"requested": requested, "refs": refs or {"ssl-a": A, "ssl-b": B},
            "reads": {"ssl-a": list(read_a), "ssl-b": list(read_b)}}


def test_the_right_language_is_never_confused_and_the_other_order_is_flagged():
    language_order = benchmark("language_order")
    # Asked for ssl-b: read as ssl-b it is B exactly; read as ssl-a it is noise.
    right = language_order.summarise([row("ssl-b", ["GO"], B)] * 3)
    assert right["own_wer"] == 0 and right["other_wer"] == pytest.approx(0.75)
    assert right["confused"] == right["other_order_closer"] == 0.0
    # Asked for ssl-b, it signs ssl-b's signs in ssl-a's order, and reads well as ssl-a.
    wrong = language_order.summarise([row("ssl-b", A, A)] * 2 + [row("ssl-b", ["GO"], B)] * 2)
    assert wrong["confused"] == wrong["other_order_closer"] == 0.5
    assert wrong["own_read_other_order_wer"] == pytest.approx((0 + 0 + 2 + 2) / 16)  # B->A: 2 edits
    # All signs right: half in ssl-a's order (asked for ssl-b), half right.
    assert wrong["right_signs"] == 1.0
    assert wrong["wrong_order_given_right_signs"] == wrong["other_order_given_right_signs"] \
        == 0.5
    # A sign missing: not among the right-sign sentences.
    missing = language_order.summarise([row("ssl-b", A, B[:3]), row("ssl-b", A, B)])
    assert missing["right_signs"] == 0.5 and missing["wrong_order_given_right_signs"] == 0
    # A sentence both languages order alike cannot tell them apart: not counted.
    same = language_order.summarise([row("ssl-a", A, A, refs={"ssl-a": A, "ssl-b": A})])
    assert same["sentences_whose_orders_differ"] == 0 and "confused" not in same
    assert language_order.sentence_wer(A, B) == 0.5


def test_pair_orders_count_only_the_pairs_the_languages_order_differently():
    language_order = benchmark("language_order")
    # A = TOMORROW STORE I GO, B = I TOMORROW STORE GO: the pairs (TOMORROW, I) and
    # (STORE, I) differ; every pair with GO, and (TOMORROW, STORE), do not.
    assert language_order.pair_orders(list(A), list(B), list(A)) == (2, 0)
    assert language_order.pair_orders(list(A), list(B), list(B)) == (0, 2)
    # STORE misread: only (TOMORROW, I) is left, and it is in B's order.
    assert language_order.pair_orders(list(A), list(B), ["I", "TOMORROW", "CAR", "GO"]) == (0, 1)
    # ssl-a may front the object as a topic or not: a pair it orders either way (STORE, I)
    # is free in ssl-a and not counted when the other order is given as allowed.
    topic, plain = ("TOMORROW", "STORE", "I", "GO"), ("TOMORROW", "I", "GO", "STORE")
    assert language_order.pair_orders(list(topic), list(B), list(plain)) == (1, 1)
    assert language_order.pair_orders(list(topic), list(B), list(plain), [plain]) == (1, 0)
    assert language_order.pair_orders(list(topic), list(B), list(B), [plain]) == (0, 1)
    # A sign read twice says nothing about its position.
    assert language_order.pair_orders(list(A), list(B), ["I", "TOMORROW", "I", "GO"]) == (0, 0)
    # Asked for ssl-b: one reading in B's order with a sign missing, one in A's order.
    rows = [row("ssl-b", ["GO"], ["I", "TOMORROW", "GO"]), row("ssl-b", A, A)]
    out = language_order.summarise(rows)
    assert out["order_pairs"] == 1 + 2 and out["other_order_pairs"] == pytest.approx(2 / 3)
    assert out["other_order_sentences"] == 0.5
    # Ground truth read right: no pair in the other order.
    truth = language_order.summarise([row("ssl-a", A, ["GO"]), row("ssl-b", ["GO"], B)])
    assert truth["other_order_pairs"] == 0 and truth["order_pairs"] == 4
