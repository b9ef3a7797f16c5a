"""The paper's networks with keras.applications' conventions (README "Using it like keras.applications").

    from inception import applications
    model = applications.InceptionResNetV2(weights="imagenet")
    preds = model.predict(applications.preprocess_input(images))   # images in [0, 255]
    print(applications.decode_predictions(preds, top=3)[0])       # [(wnid, name, score), ...]

As in keras.applications, each network also has its own module (``inception_v4``,
``inception_resnet_v1``, ``inception_resnet_v2``) with the function, ``preprocess_input`` and
``decode_predictions``. Pure Keras 3 until weights are loaded (``inception.weights``).
"""

from inception.applications.imagenet_utils import decode_predictions, preprocess_input  # noqa: F401
from inception.applications.inception_resnet_v1 import InceptionResNetV1  # noqa: F401
from inception.applications.inception_resnet_v2 import InceptionResNetV2  # noqa: F401
from inception.applications.inception_v4 import InceptionV4  # noqa: F401
