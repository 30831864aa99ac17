"""The A/B boot comparison's statistics and its command line (the boots are integration's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab.bench_compare import paired, sign_test_p


@pytest.mark.parametrize(
    ("wins", "pairs", "p"),
    [
        (8, 8, 2 / 256),  # all eight one way
        (0, 8, 2 / 256),
        (7, 8, 2 * 9 / 256),  # 7:1, either way round
        (1, 8, 2 * 9 / 256),
        (4, 8, 1.0),  # an even split is no evidence
        (5, 10, 1.0),
        (10, 10, 2 / 1024),
        (0, 0, 1.0),  # every pair a tie
        (1, 1, 1.0),
        (1000, 2000, 1.0),  # beyond a float's range in the intermediate counts
        (0, 2000, 2.0**-1999),
    ],
)
def test_sign_test(wins: int, pairs: int, p: float) -> None:
    assert sign_test_p(wins, pairs) == pytest.approx(p)


@pytest.mark.parametrize(("wins", "pairs"), [(-1, 4), (5, 4)])
def test_sign_test_refuses_impossible_counts(wins: int, pairs: int) -> None:
    with pytest.raises(ValueError, match="wins out of"):
        sign_test_p(wins, pairs)


def test_paired_differences_and_ties() -> None:
    # Boot seconds as one sitting gives them (a drifting host): B faster in 3 pairs, one tie.
    a = [2.26, 2.47, 2.36, 2.25, 2.30]
    b = [2.05, 2.72, 2.16, 2.25, 2.10]
    r = paired(a, b)
    assert r["pairs"] == 5 and r["b_faster_pairs"] == 3 and r["b_slower_pairs"] == 1
    assert r["a_median_s"] == pytest.approx(2.30) and r["b_median_s"] == pytest.approx(2.16)
    # the median of the differences, not the difference of the medians
    assert r["median_diff_s"] == pytest.approx(-0.2)
    assert r["sign_test_p"] == pytest.approx(sign_test_p(3, 4))


@pytest.mark.parametrize(("a", "b"), [([], []), ([1.0], [1.0, 2.0])])
def test_paired_needs_equal_nonempty_samples(a: list[float], b: list[float]) -> None:
    with pytest.raises(ValueError, match="same, non-zero length"):
        paired(a, b)


def test_the_command_line_reaches_the_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    """--compare-* runs only the comparison, with the extras and pairs it was given, and its
    own default output (bench.json, the full benchmark's, is left alone)."""
    import lab.bench_compare
    from lab.cli import main

    seen: dict[str, Any] = {}

    def fake(arches: list[str], pairs: int, out: Path, accel: str, *extras: Any) -> int:
        seen.update(arches=arches, pairs=pairs, out=out, accel=accel, extras=extras)
        return 0

    monkeypatch.setattr(lab.bench_compare, "compare", fake)
    argv = ["bench", "--arch", "arm64", "--runs", "8", "--compare-append", "nosmt"]
    argv += ["--compare-append", "quiet", "--compare-qemu-arg=-no-hpet"]
    assert main(argv) == 0
    assert seen == {
        "arches": ["arm64"],
        "pairs": 8,
        "out": Path("results/bench-compare.json"),
        "accel": "auto",
        "extras": (("nosmt", "quiet"), ("-no-hpet",)),
    }


@pytest.mark.parametrize("option", ["--compare-append", "--compare-qemu-arg"])
def test_an_empty_extra_is_refused_before_any_boot(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from lab.cli import main

    assert main(["bench", option, " "]) == 125
    err = capsys.readouterr().err
    assert f"{option} needs a value, not an empty one" in err and "Traceback" not in err


def test_a_qemu_arg_starting_with_a_dash_may_follow_the_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lab.bench_compare
    from lab.cli import main

    seen: list[Any] = []
    monkeypatch.setattr(lab.bench_compare, "compare", lambda *a: seen.append(a[4:]) or 0)
    assert main(["bench", "--compare-qemu-arg", "-no-hpet"]) == 0
    assert seen == [((), ("-no-hpet",))]
