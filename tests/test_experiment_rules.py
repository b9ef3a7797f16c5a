"""The report's verdict rules (inception.experiments.report) on hand-made curves: each rule says
what the paper claims, so each outcome is checked against a case built to produce it."""

import numpy as np

from inception.experiments import report


def _curve(errors, seed=0):
    errors = np.asarray(errors, dtype=float)
    steps = np.arange(1, errors.size + 1)
    return {
        "seed": seed,
        "epoch": steps,
        "step": 10 * steps,
        "wall": steps * 5.0,
        "top1_err": errors,
        "top5_err": errors / 2,
    }


def _pair(v4, irv2):
    return {
        "inception_v4": [_curve(e, s) for s, e in enumerate(v4)],
        "inception_resnet_v2": [_curve(e, s) for s, e in enumerate(irv2)],
    }


TARGET = 0.2


def test_speed_is_reproduced_when_the_residual_network_reaches_the_target_first_on_every_seed():
    faster = _pair(v4=[[0.9, 0.5, 0.3, 0.15], [0.9, 0.6, 0.19]], irv2=[[0.6, 0.1], [0.7, 0.18]])
    verdict, detail = report.judge_speed({"recipe": faster}, TARGET)
    assert verdict == "reproduced"
    assert "Inception-v4 seed 0: 4 epochs / 20 s, seed 1: 3 epochs / 15 s" in detail
    assert "Inception-ResNet-v2 seed 0: 2 epochs / 10 s, seed 1: 2 epochs / 10 s" in detail
    # Only the recipe decides; a control where the plain network never gets there is reported.
    stuck = _pair(v4=[[0.9, 0.9], [0.9, 0.9]], irv2=[[0.3, 0.1], [0.3, 0.1]])
    assert report.judge_speed({"recipe": faster, "clip2.0": stuck}, TARGET)[0] == "reproduced"


def test_a_tie_or_a_faster_plain_network_is_not_reproduced():
    tie = _pair(v4=[[0.5, 0.1], [0.3, 0.1]], irv2=[[0.4, 0.15], [0.3, 0.2]])
    assert report.judge_speed({"recipe": tie}, TARGET)[0] == "not reproduced at this scale"
    slower = _pair(v4=[[0.1]], irv2=[[0.9, 0.6, 0.1]])
    assert report.judge_speed({"recipe": slower}, TARGET)[0] == "not reproduced at this scale"
    mixed = _pair(v4=[[0.5, 0.1], [0.1]], irv2=[[0.1], [0.5, 0.1]])
    verdict, detail = report.judge_speed({"recipe": mixed}, TARGET)
    assert verdict == "inconclusive" and "order differs between seeds" in detail


def test_a_plain_network_that_never_learns_makes_the_verdict_inconclusive():
    stuck = _pair(v4=[[0.90, 0.88, 0.87]], irv2=[[0.6, 0.2, 0.1]])
    verdict, detail = report.judge_speed({"recipe": stuck}, TARGET)
    assert verdict == "inconclusive"
    assert "Inception-v4 never reached 20% top-1 error on 1 of 1 seeds" in detail
    assert "did not learn" in detail and "Inception-ResNet-v2 never" not in detail
    # Learning, but too slowly for the budget: still no verdict, and not called "did not learn".
    slow = _pair(v4=[[0.9, 0.6, 0.4]], irv2=[[0.6, 0.2, 0.1]])
    verdict, detail = report.judge_speed({"recipe": slow}, TARGET)
    assert verdict == "inconclusive" and "did not learn" not in detail
    assert "seed 0: 40.0% after 3 epochs" in detail
    assert report.learned(_curve([0.9, 0.79])) and not report.learned(_curve([0.9, 0.8]))


def test_a_missing_network_is_inconclusive():
    only_irv2 = {"recipe": {"inception_resnet_v2": [_curve([0.1])]}}
    assert report.judge_speed(only_irv2, TARGET)[0] == "inconclusive"


def _died(scales, lr, zeros, state="finished"):
    zeros = np.asarray(zeros, dtype=float)
    return {
        "labels": {"residual_scales": scales, "learning_rate": lr},
        "state": state,
        "step": np.arange(zeros.size),
        "died": zeros,
        "loss_step": np.arange(3),
        "loss": np.ones(3),
    }


def test_died_needs_the_scaled_twin_to_stay_clearly_alive():
    unscaled = "1.0,1.0,1.0"
    scaled = "0.17,0.10,0.20"
    clear = {"u": _died(unscaled, 0.45, [0.1, 0.995]), "s": _died(scaled, 0.45, [0.1, 0.3])}
    assert report.judge_died(clear)[0] == "reproduced"
    close = {"u": _died(unscaled, 0.45, [0.1, 0.995]), "s": _died(scaled, 0.45, [0.1, 0.975])}
    verdict, detail = report.judge_died(close)
    assert verdict == "inconclusive" and "delayed the collapse" in detail
    both = {"u": _died(unscaled, 0.45, [0.995]), "s": _died(scaled, 0.45, [0.999])}
    assert report.judge_died(both)[0] == "inconclusive"
    alive = {"u": _died(unscaled, 0.045, [0.1, 0.2]), "s": _died(scaled, 0.045, [0.1, 0.1])}
    assert report.judge_died(alive)[0] == "not reproduced at this scale"


def test_every_measured_network_has_its_paper_title():
    """The report's titles come from the networks' specs, one for each network the cost table
    measures (a network without one would stop the report with a KeyError)."""
    from inception.experiments import speed

    assert set(report.NAMES) == set(speed.NETWORKS)
    assert report.NAMES["inception_resnet_v2"] == "Inception-ResNet-v2"
    assert report.NAMES["inception_resnet_v2_paper"] == "Inception-ResNet-v2 (paper)"
