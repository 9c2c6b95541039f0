"""The activeserve server: gRPC services, model repository and runtime, batching and
the label-request queue."""
