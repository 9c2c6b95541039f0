"""Running models: ONNX Runtime sessions, dynamic batching, and the uncertainty
pipeline that turns one request into predictions plus AIFT scores."""
