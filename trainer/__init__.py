"""The activeserve trainer: continuous fine-tuning on labelled hard samples, ONNX
export and publishing over gRPC."""
