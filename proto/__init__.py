"""Wire definitions: the Open Inference Protocol, activeserve's own services, and the
numpy <-> tensor codec."""
