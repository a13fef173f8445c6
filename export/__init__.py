"""Export of vaezoo models to ONNX and TFLite, and a TensorFlow-free edge runtime."""
