"""gRPC services: the Open Inference Protocol, and activeserve's `activeserve.v1`."""
