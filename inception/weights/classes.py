"""The 1000 ImageNet classes in TFDS ``imagenet2012`` label order, available offline.

``imagenet_classes.tsv`` (next to this file) holds one ``synset<TAB>names`` line per class; its
header comment gives the provenance. TF-slim's checkpoints have 1001 outputs with a
"background" class 0 in front of these; timm's and Keras' files have exactly these 1000.
"""

import functools
import os

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_classes.tsv")
BACKGROUND = "background"


@functools.lru_cache(maxsize=1)
def imagenet_classes():
    """((synset ids), (readable names)) of the 1000 classes, in TFDS order."""
    ids, names = [], []
    with open(DATA_FILE, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            synset, name = line.rstrip("\n").split("\t")
            ids.append(synset)
            names.append(name)
    if len(ids) != 1000 or len(set(ids)) != 1000:
        raise RuntimeError(f"{DATA_FILE} must list 1000 distinct synsets; it lists {len(ids)}")
    return tuple(ids), tuple(names)


def class_lists(num_classes):
    """(ids, names) for a 1000-class model, or 1001 with "background" first (slim's layout)."""
    ids, names = imagenet_classes()
    if num_classes == 1000:
        return list(ids), list(names)
    if num_classes == 1001:
        return [BACKGROUND] + list(ids), [BACKGROUND] + list(names)
    raise ValueError(
        f"ImageNet classifiers have 1000 classes (or 1001 with background); got {num_classes}"
    )
