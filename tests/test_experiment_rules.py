"""The report's verdict rules (inception.experiments.report) on hand-made curves: each rule says
what the paper claims, so each outcome is checked against a case built to produce it."""

import numpy as np

from inception.experiments import report


def _curve(errors, seed=0):
    errors = np.asarray(errors, dtype=float)
    steps = np.arange(1, errors.size + 1)
    return {"seed": seed, "epoch": steps, "step": 10 * steps,
            "wall": steps * 5.0, "top1_err": errors, "top5_err": errors / 2}


def _pair(v4, irv2):
    return {"inception_v4": [_curve(e, s) for s, e in enumerate(v4)],
            "inception_resnet_v2": [_curve(e, s) for s, e in enumerate(irv2)]}


def test_speed_is_reproduced_only_when_every_setting_favours_the_residual_network():
    faster = _pair(v4=[[0.9, 0.5, 0.3], [0.9, 0.6, 0.3]], irv2=[[0.6, 0.2, 0.1], [0.7, 0.3, 0.1]])
    slower = _pair(v4=[[0.6, 0.2, 0.1]], irv2=[[0.9, 0.6, 0.3]])
    assert report.judge_speed({"recipe": faster})[0] == "reproduced"
    assert report.judge_speed({"recipe": slower})[0] == "not reproduced at this scale"
    assert report.judge_speed({"recipe": faster, "lr0.1x": slower})[0] == "inconclusive"
    overlap = _pair(v4=[[0.5, 0.3], [0.9, 0.8]], irv2=[[0.6, 0.4], [0.7, 0.5]])
    verdict, detail = report.judge_speed({"recipe": overlap})
    assert verdict == "inconclusive" and "spreads overlap" in detail


def test_a_network_that_never_beats_twice_chance_is_named_as_not_learning():
    stuck = _pair(v4=[[0.90, 0.88, 0.87]], irv2=[[0.6, 0.2, 0.1]])
    verdict, detail = report.judge_speed({"recipe": stuck})
    assert verdict == "reproduced"
    assert "Inception-v4 did not learn" in detail and "Inception-ResNet-v2 did not" not in detail
    assert report.learned(_curve([0.9, 0.79])) and not report.learned(_curve([0.9, 0.8]))


def _died(scales, lr, zeros, state="finished"):
    zeros = np.asarray(zeros, dtype=float)
    return {"labels": {"residual_scales": scales, "learning_rate": lr}, "state": state,
            "step": np.arange(zeros.size), "died": zeros, "loss_step": np.arange(3),
            "loss": np.ones(3)}


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
