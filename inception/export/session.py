"""Runs a SavedModel the way TF Serving's C++ loader and ``saved_model_cli run`` do.

Those tools do not rebuild Python objects (as ``tf.saved_model.load`` does): they import the
``serve`` MetaGraph into a graph, run the saver's restore op on ``variables/``, run the init op
(which fills lookup tables from ``assets/``) and then run a signature by the tensor names in its
SignatureDef. ``SessionModel`` does exactly that, so the export report measures what a server runs.
"""

import tensorflow as tf
from tensorflow.python.util import deprecation

SERVE_TAG = "serve"


class SessionModel:
    """A SavedModel loaded through ``tf.compat.v1`` in its own graph and session."""

    def __init__(self, path, tags=(SERVE_TAG,)):
        self.path = path
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        # The v1 loader is marked deprecated in favour of the object loader, which is exactly what
        # this class must not use; its warning would only mislead.
        with self.graph.as_default(), deprecation.silence():
            meta_graph = tf.compat.v1.saved_model.load(self.session, list(tags), path)
        self.signatures = dict(meta_graph.signature_def)

    def run(self, signature, **inputs):
        """Feeds numpy arrays (or lists of bytes) by input key; returns {output key: numpy array}."""
        if signature not in self.signatures:
            raise KeyError(
                f"{self.path} has no signature {signature!r}; it has {sorted(self.signatures)}"
            )
        definition = self.signatures[signature]
        unknown = sorted(set(inputs) - set(definition.inputs))
        missing = sorted(set(definition.inputs) - set(inputs))
        if unknown or missing:
            raise KeyError(
                f"signature {signature!r} takes inputs {sorted(definition.inputs)}; "
                f"got {sorted(inputs)}"
            )
        # Lists of bytes are fed as they are: a numpy 'S' array would drop trailing NUL bytes.
        feeds = {definition.inputs[k].name: v for k, v in inputs.items()}
        keys = sorted(definition.outputs)
        values = self.session.run([definition.outputs[k].name for k in keys], feeds)
        return dict(zip(keys, values))

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
