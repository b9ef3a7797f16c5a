"""Every config file, README "Recipe" and the config defaults against the one recipe table in
code (``inception.recipe``), so that no config drifts from the documented recipe again."""

import os
import re

import pytest

from inception import recipe
from inception.train import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")
# Which recipe each shipped config follows; a new config fails here until it is classified.
CONFIG_RECIPES = {
    "v4.cfg": "imagenet",
    "irv2.cfg": "imagenet",
    "irv1.cfg": "imagenet",
    "irv2_paper.cfg": "imagenet",
    "demo.cfg": "miniature",
    "finetune_demo.cfg": "finetune",
}


def _parse(path):
    """(the TrainConfig, the flag names the file sets) of a flagfile, parsed by absl as
    main.py parses it."""
    from absl import flags as absl_flags

    from inception_cli import train_flags

    values = absl_flags.FlagValues()
    for flag in train_flags.FLAGS.get_flags_for_module(train_flags.__name__):
        values[flag.name] = flag
    # finetune_demo.cfg starts from the demo's output, which need not exist here.
    values(["prog", f"--flagfile={path}", "--init_weights="])
    try:
        return train_flags.to_config(values), {n for n in values if values[n].present}
    finally:
        values.unparse_flags()


def test_every_config_is_classified():
    shipped = sorted(n for n in os.listdir(CONFIGS) if n.endswith(".cfg"))
    assert shipped == sorted(CONFIG_RECIPES)


@pytest.mark.parametrize("name", sorted(CONFIG_RECIPES))
def test_config_trains_with_its_documented_recipe(name):
    parsed, present = _parse(os.path.join(CONFIGS, name))  # also: a valid TrainConfig
    flat = parsed.to_flat()
    assert {k: flat[k] for k in recipe.IMAGENET} == recipe.values(CONFIG_RECIPES[name])
    if CONFIG_RECIPES[name] == "imagenet":  # spelled out in full, for a reader of the file
        assert set(recipe.IMAGENET) <= present, set(recipe.IMAGENET) - present
        assert (flat["dataset"], flat["image_size"], flat["clip_norm"]) == ("imagenet2012", 299, 0)
        assert flat["aux_logits"]


def test_config_defaults_are_the_imagenet_recipe():
    defaults = config.TrainConfig().to_flat()
    assert {k: defaults[k] for k in recipe.IMAGENET} == recipe.values("imagenet")


def test_no_gradient_clipping_in_the_recipe():
    # Neither the paper nor the released trainer clips; Inception-v3's 2.0 stays an option.
    assert recipe.IMAGENET["clip_norm"].value == 0.0
    assert not recipe.IMAGENET["clip_norm"].deviation
    assert config.RecipeConfig(clip_norm=2.0).clip_norm == 2.0


def test_deviations_are_exactly_the_values_not_from_the_paper_or_the_released_code():
    own = ("paper", "released")  # this paper's sections and figures, the authors' code
    for name, value in recipe.IMAGENET.items():
        assert value.deviation == (not value.source.startswith(own)), (name, value.source)


def test_every_departure_of_the_small_runs_says_why():
    for table in (recipe.MINIATURE, recipe.FINETUNE):
        for name, value in table.items():
            assert name in recipe.IMAGENET, name
            assert value.value != recipe.IMAGENET[name].value, name
            assert len(value.source.split()) >= 5, (name, value.source)


def test_readme_recipe_table_is_the_code_table():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("<!-- recipe table -->")[1]
    rows = re.findall(r"^\| `--(\w+)` \| `([^`]*)` \|(.*)\|$", section, flags=re.M)
    assert {name for name, _, _ in rows} == set(recipe.IMAGENET)
    for name, value, _ in rows:
        expected = recipe.IMAGENET[name].value
        assert float(value) == expected if not isinstance(expected, str) else value == expected, (
            name,
            value,
        )
    deviations = {name for name, _, source in rows if "deviation" in source}
    assert deviations == {n for n, v in recipe.IMAGENET.items() if v.deviation}
