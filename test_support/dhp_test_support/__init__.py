"""What the tests and the benchmark scripts share to drive the package from outside: nodes
and launches over DDS (:mod:`.ros`), a Ray cluster on loopback (:mod:`.cluster`), and
process groups and signals (:mod:`.processes`).

Test support, not part of the installed package: pytest finds it through its ``pythonpath``
setting (``pyproject.toml``), the scripts through ``sys.path``.
"""
