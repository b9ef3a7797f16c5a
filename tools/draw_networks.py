"""Draws each network's block-level diagram (the paper's Figures 9 and 15) to PNG.

    .venv/bin/python tools/draw_networks.py [--out docs]

One picture per NetworkSpec (inception/networks.py): the boxes are the spec's blocks, repeats
grouped ("4 x Inception-A"), and each box shows the output shape of the model built from it, so
the pictures stay true to the code.
"""

import argparse
import io
import itertools
import os

from inception_cli import common

common.setup_script()  # before TensorFlow loads

from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from inception import fileio, models, networks  # noqa: E402

PRETTY = {
    "stem": "Stem",
    "inception_a": "Inception-A",
    "inception_b": "Inception-B",
    "inception_c": "Inception-C",
    "inception_resnet_a": "Inception-ResNet-A",
    "inception_resnet_b": "Inception-ResNet-B",
    "inception_resnet_c": "Inception-ResNet-C",
    "reduction_a": "Reduction-A",
    "reduction_b": "Reduction-B",
}
COLOURS = {
    "stem": "#f4d03f",
    "reduction": "#e59866",
    "inception": "#85c1e9",
    "head": "#d5dbdb",
    "conv": "#a9dfbf",
}


def boxes_for(spec, model):
    """(label, output shape, colour key) from input to softmax, with repeats grouped."""
    rows = [("Input", "x".join(str(d) for d in model.input.shape[1:]), "head")]

    def kind(name):
        return (
            name.rsplit("_", 1)[0] if name[-1].isdigit() and not name.startswith("conv_") else name
        )

    for key, group in itertools.groupby(spec.block_names, key=kind):
        group = list(group)
        layer = model.get_layer(group[-1])
        pretty = f"1x1 Conv {spec.final_conv}" if key == "conv_7b" else PRETTY[key]
        label = pretty if len(group) == 1 else f"{len(group)} x {pretty}"
        if key == f"{spec.family}_c" and spec.final_linear_block:
            label += " (last: scale 1, linear)"
        colour = next(c for c in ("stem", "reduction", "inception", "conv") if key.startswith(c))
        rows.append((label, "x".join(str(d) for d in layer.output.shape[1:]), colour))
    rows.append(("Average Pooling", str(model.get_layer("avg_pool").output.shape[-1]), "head"))
    rows.append(("Dropout (keep 0.8)", str(model.get_layer("dropout").output.shape[-1]), "head"))
    rows.append(("Softmax", str(model.output.shape[-1]), "head"))
    return rows


def draw(rows, title, path):
    try:
        font = ImageFont.load_default(size=18)
        small = ImageFont.load_default(size=15)
    except TypeError:  # Pillow without scalable default fonts
        font = small = ImageFont.load_default()
    box_w, box_h, gap, margin, shape_w = 430, 40, 22, 30, 150
    width = margin * 2 + box_w + shape_w
    height = margin * 2 + 40 + len(rows) * (box_h + gap)
    image = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(image)
    d.text((margin, margin), title, fill="black", font=font)
    y = margin + 40
    centre = margin + box_w // 2
    for i, (label, shape, colour) in enumerate(rows):
        d.rounded_rectangle(
            [margin, y, margin + box_w, y + box_h], radius=8, fill=COLOURS[colour], outline="black"
        )
        tw = d.textlength(label, font=font)
        d.text((centre - tw / 2, y + 10), label, fill="black", font=font)
        d.text((margin + box_w + 12, y + 12), shape, fill="#333333", font=small)
        if i + 1 < len(rows):
            d.line([centre, y + box_h, centre, y + box_h + gap], fill="black", width=2)
            d.polygon(
                [
                    (centre - 6, y + box_h + gap - 8),
                    (centre + 6, y + box_h + gap - 8),
                    (centre, y + box_h + gap),
                ],
                fill="black",
            )
        y += box_h + gap
    png = io.BytesIO()
    image.save(png, format="PNG")
    fileio.write_bytes(path, png.getvalue())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs")
    common.add_verbose_argument(parser)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for spec in networks.SPECS.values():
        model = models.build(spec.name, variant=spec.variant)
        path = os.path.join(args.out, f"{spec.model_name}.png")
        draw(boxes_for(spec, model), f"{spec.title} ({spec.source})", path)
        print("wrote", path)


if __name__ == "__main__":
    main()
