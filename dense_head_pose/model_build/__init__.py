"""``models build`` and ``models import-bfm``: the model pack made from its upstream files.

Used by the CLI only, never by the pipeline: :mod:`.builder` obtains and verifies the
upstream files and writes the pack; :mod:`.safe_pickle` reads their pickles without running
them, :mod:`.regressor_conversion` and :mod:`.tflite_writer` turn the PyTorch checkpoint into
a LiteRT model, :mod:`.quantization` makes the int8 regressor, :mod:`.bfm_import` brings in
3DDFA_V2's full Basel Face Model.
"""
