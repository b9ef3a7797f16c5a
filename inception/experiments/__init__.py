"""The paper's empirical claims re-run in miniature: ``python -m inception.experiments``.

- ``runs``: the runs as data (which network, recipe and scale serves which claim).
- ``runner``: trains them as ordinary run directories, skipping finished ones.
- ``speed``: multiply-adds against measured training / inference images/s.
- ``results``: reads the run directories; ``report``: figures and verdict rules;
  ``document``: the generated README.md and results.json.
"""
