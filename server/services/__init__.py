"""gRPC services: the Open Inference Protocol, and activeserve's own `activeserve.v1`."""
