"""main.py from existing weights: --init_weights (fine-tuning and --mode=eval), --freeze_up_to,
--bn_inference (README "Pretrained weights", issue 11 "Use the weights").

One in-process fine-tuning run of a small network (Inception-ResNet-v1 x0.1, 75x75, no aux head)
on the embedded dataset, starting from a .keras model saved here with another class count (so
the classifier is new) and BatchNorm statistics measured on real images (so "loaded" and "left
at the defaults" differ). The resume and --mode=eval checks reuse the same process and strategy.
"""

import os
import subprocess
import sys
import types

import numpy as np
import pytest

from training_runs import SHALLOW

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = dict(model="inception_resnet_v1", width_multiplier=0.1, repeats=SHALLOW, image_size=75)
SOURCE_CLASSES = 7  # sklearn_digits has 10: the fine-tuned run needs a new classifier
FREEZE = "reduction_a"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from inception import data

    path = str(tmp_path_factory.mktemp("tfds"))
    data.describe(data.EMBEDDED_DATASET, data_dir=path)
    return path


def _digits(data_dir, n=64):
    from inception import data

    pipe = data.InputPipeline(
        "sklearn_digits",
        split="train",
        image_size=75,
        global_batch_size=n,
        is_training=False,
        data_dir=data_dir,
        seed=0,
    )
    images, _ = next(iter(pipe.input_fn()))
    return images


def _source(num_classes, images, path):
    """A saved inference model whose BatchNorm statistics are those of a batch of digits."""
    import keras

    from inception import models

    model = models.build(
        MODEL["model"],
        num_classes=num_classes,
        input_shape=(75, 75, 3),
        width_multiplier=MODEL["width_multiplier"],
        repeats=SHALLOW,
        aux_logits=False,
        bn_momentum=0.0,
        classifier_activation="softmax",
    )
    model(images, training=True)  # momentum 0: the moving statistics become this batch's
    # Back to the trainer's momentum, so the file looks like any saved model.
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.save(path)
    return {v.path: np.array(v) for v in model.weights if "seed_generator" not in v.path}


FINETUNE_SEED = 0


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, data_dir):
    """Sources saved, then a --mode=train fine-tuning run of 2 epochs x 15 steps from one."""
    import keras

    from inception import train
    from inception.train.config import TrainConfig

    # Seeded and deterministic: the "it learns" figures below are one measured run, not a draw.
    keras.utils.set_random_seed(FINETUNE_SEED)
    root = tmp_path_factory.mktemp("finetune")
    images = _digits(data_dir)
    sources = {"7": str(root / "source7.keras"), "10": str(root / "source10.keras")}
    values = {
        "7": _source(SOURCE_CLASSES, images, sources["7"]),
        "10": _source(10, images, sources["10"]),
    }
    config = TrainConfig.from_flat(
        dict(
            mode="train",
            dataset="sklearn_digits",
            data_dir=data_dir,
            model_dir=str(root / "run"),
            aux_logits=False,
            batch_size=32,
            steps_per_epoch=15,
            epochs=2,
            learning_rate=0.02,
            bn_momentum=0.9,
            ema_decay=0.9,
            progress=False,
            checkpoint_every_steps=1000,
            init_weights=sources["7"],
            freeze_up_to=FREEZE,
            bn_inference=True,
            deterministic=True,
            seed=FINETUNE_SEED,
            **MODEL,
        )
    )
    strategy = train.setup(config)
    plan = train.make_plan(config, strategy)
    trainer = train.Trainer(config, strategy, plan)
    built = trainer.state
    initial = {v.path: np.array(v) for v in built.model.weights}
    ema_initial = [np.array(a) for a in built.ema.averages]
    ema_sources = [np.array(v) for v in built.ema.model_variables]
    step = trainer.train()
    final = {v.path: np.array(v) for v in built.model.weights}
    result = trainer.validator.validate()
    return types.SimpleNamespace(
        config=config,
        strategy=strategy,
        trainer=trainer,
        task=trainer.task,
        state=built,
        sources=sources,
        values=values,
        initial=initial,
        final=final,
        step=step,
        result=result,
        ema_initial=ema_initial,
        ema_sources=ema_sources,
        images=images,
    )


def _frozen_paths(model):
    from inception import models

    names = models.block_names(model)
    frozen = names[: names.index(FREEZE) + 1]
    return [v.path for v in model.weights if v.path.split("/")[0] in frozen]


def test_starts_from_the_given_weights_with_a_new_head(finetuned):
    source, initial = finetuned.values["7"], finetuned.initial
    body = [p for p in source if not p.startswith("predictions/")]
    assert len(body) > 100 and set(body) <= set(initial)
    for path in body:  # by value: kernels, betas and the measured BN statistics
        np.testing.assert_array_equal(initial[path], source[path], err_msg=path)
    assert source["predictions/kernel"].shape[-1] == SOURCE_CLASSES
    assert initial["predictions/kernel"].shape[-1] == 10 == finetuned.task.num_classes
    # The EMA starts from the loaded values, not from the random initialization.
    for average, value in zip(finetuned.ema_initial, finetuned.ema_sources):
        np.testing.assert_array_equal(average, value)


def test_frozen_blocks_and_bn_statistics_do_not_move_and_it_learns(finetuned):
    built, initial, final = finetuned.state, finetuned.initial, finetuned.final
    frozen = _frozen_paths(built.model)
    assert any("stem" in p for p in frozen) and any(p.startswith(FREEZE + "/") for p in frozen)
    for path in frozen:
        np.testing.assert_array_equal(final[path], initial[path], err_msg=path)
    trainable = {v.path for v in built.model.trainable_weights}
    assert trainable and not trainable & set(frozen)
    # --bn_inference: every BatchNorm everywhere keeps its moving statistics and its beta.
    statistics = [v.path for v in built.moving_statistics]
    assert len(statistics) == 2 * sum(1 for p in initial if p.endswith("/moving_mean"))
    assert not {p for p in trainable if "/batch_normalization/" in p or p.endswith("beta")}
    for path in statistics:
        np.testing.assert_array_equal(final[path], initial[path], err_msg=path)
    # Layers after the frozen part did train.
    moved = [p for p in trainable if not np.array_equal(final[p], initial[p])]
    assert len(moved) == len(trainable)
    # It learns: the loss falls from the first epoch to the second, and the EMA model is well
    # above chance (0.1) on the held-out digits after 30 steps from random features: measured
    # 0.39 at seed 0 (losses 3.65 -> 2.78), 0.26-0.44 at seeds 1-3, so 0.2 is not a coin toss.
    import csv

    with open(os.path.join(finetuned.config.run.model_dir, "metrics.csv")) as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert len(losses) == 2 and losses[1] < losses[0], losses
    assert finetuned.step == 30 and finetuned.result["val_top1"] > 0.2, finetuned.result


def test_run_config_records_the_start_and_a_resume_restores_the_checkpoint(finetuned):
    import json

    from inception import train

    config, strategy = finetuned.config, finetuned.strategy
    with open(os.path.join(config.run.model_dir, "run_config.json")) as f:
        recorded = json.load(f)
    assert recorded["init_weights"] == config.model.init_weights
    assert recorded["freeze_up_to"] == FREEZE and recorded["bn_inference"] is True
    # Rerunning the command: the checkpoint wins; the file is not read again (a missing file
    # would not matter), and the frozen layout matches the checkpoint's optimizer slots.
    resumed = train.Trainer(config, strategy, train.make_plan(config, strategy))
    assert resumed.state.init_report is None
    path, step = resumed.restore()
    assert path and step == finetuned.step
    for v in resumed.state.model.weights:
        np.testing.assert_array_equal(np.array(v), finetuned.final[v.path], err_msg=v.path)
    assert not (
        {v.path for v in resumed.state.model.trainable_weights}
        & set(_frozen_paths(resumed.state.model))
    )
    # Another start is another run.
    other = config.replace(init_weights=finetuned.sources["10"])
    with pytest.raises(train.TrainingError, match="init_weights"):
        train.Trainer(other, strategy, train.make_plan(other, strategy))


def test_eval_of_init_weights_needs_no_checkpoint(finetuned, tmp_path, data_dir):
    import keras

    from inception import data, train

    config = finetuned.config.replace(
        mode="eval",
        model_dir=str(tmp_path / "eval"),
        init_weights=finetuned.sources["10"],
        freeze_up_to="",
        bn_inference=False,
        eval_batch_size=100,
    )
    result = train.run(config, finetuned.strategy)
    assert result["checkpoint"] is None and result["init_weights"] == finetuned.sources["10"]
    assert os.path.exists(tmp_path / "eval" / "eval.json")
    # The source model itself on the same images (Keras' loader, no trainer code).
    model = keras.saving.load_model(finetuned.sources["10"])
    pipe = data.InputPipeline(
        "sklearn_digits",
        split="eval",
        image_size=75,
        global_batch_size=100,
        is_training=False,
        data_dir=data_dir,
        seed=0,
        pad_to_full_batches=True,
    )
    correct = count = 0
    for images, labels in pipe.input_fn():
        real = labels.numpy() != data.PAD_LABEL
        top1 = np.argmax(model(images, training=False).numpy(), axis=-1)
        correct += int(np.sum((top1 == labels.numpy()) & real))
        count += int(np.sum(real))
    assert result["num_eval"] == count
    assert result["val_top1"] == pytest.approx(correct / count, abs=1e-9)


def test_class_count_mismatch_in_eval_and_unknown_block_fail_clearly(finetuned, tmp_path):
    from inception import train

    base = finetuned.config.replace(model_dir=str(tmp_path / "bad"))
    # Evaluating a file of 7 classes on 10: refused (a fresh head would score chance).
    config = base.replace(
        mode="eval", init_weights=finetuned.sources["7"], freeze_up_to="", bn_inference=False
    )
    with pytest.raises(ValueError, match="7 classes"):
        train.run(config, finetuned.strategy)
    assert not os.path.exists(tmp_path / "bad"), "a refused file must leave no run directory"
    # A block name of the family that these repeats do not have: refused by the config.
    with pytest.raises(ValueError, match="not a block of inception_resnet_v1; its blocks: stem"):
        base.replace(freeze_up_to="inception_resnet_a_7")
    assert not os.path.exists(tmp_path / "bad" / "run_config.json")


def test_block_names_without_building_match_the_model(finetuned):
    from inception import models

    assert models.layout_block_names("inception_resnet_v1", repeats=SHALLOW) == models.block_names(
        finetuned.state.model
    )
    assert len(models.layout_block_names("inception_resnet_v1")) == 3 + 5 + 10 + 5


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--model=inception_v4", "--freeze_up_to=inception_resnet_a_1"],
            "is not a block of inception_v4; its blocks: stem, inception_a_1",
        ),
        (
            ["--init_weights=/no/such/weights.keras"],
            "--init_weights='/no/such/weights.keras': no such file",
        ),
    ],
)
def test_bad_start_flags_fail_at_parse_time(args, message, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow", PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "main.py"), f"--model_dir={tmp_path}/run"] + args,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
    assert not os.path.exists(tmp_path / "run")
