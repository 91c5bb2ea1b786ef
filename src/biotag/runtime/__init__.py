"""ONNX export (:func:`export_onnx`, needs PyTorch) and ONNX Runtime inference
(:class:`OnnxTokenClassifier`, needs neither PyTorch nor transformers)."""

from biotag.runtime.engine import OnnxTokenClassifier
from biotag.runtime.export import export_onnx

__all__ = ["OnnxTokenClassifier", "export_onnx"]
