"""Export: the locked-style generator (:mod:`.bake`), ONNX graphs and int8 (:mod:`.onnx`), TensorRT
engines (:mod:`.tensorrt`), and parity checks (:mod:`.verify`). Command line: ``python -m export``
with the subcommands ``onnx``, ``quantize``, ``trt`` and ``verify``."""
