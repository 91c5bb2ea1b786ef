"""Model compression that changes the weights (ONNX export and int8 quantization are in
:mod:`biotag.runtime.export`): structured pruning of heads, FFN neurons and layers
(:mod:`~biotag.compress.structured`), vocabulary pruning
(:mod:`~biotag.compress.vocab`) and unstructured magnitude sparsity
(:mod:`~biotag.compress.sparsity`). Each writes a new biotag model directory with the
same label schema, which ``biotag export`` turns into an ONNX model."""
