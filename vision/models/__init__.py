"""The shipped photo model (ONNX) and its provenance record; data only."""
