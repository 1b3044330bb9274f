"""What the client and the server agree on, importable by both and by nothing heavier.

`contract.tensors` is TensorFlow's TensorProto <-> numpy rules; `contract.mnist` is the
MNIST model's interface (tensor names, pixel scaling, signature). This is its own
top-level package, not part of `client` or `serving`, because each side must be able to
import it without the other: `import client` must never pull in TensorFlow (the server's
dependency), and the server, its JSON worker processes, training and the load test
should not load the client SDK (gRPC stubs, Pillow, the client's generated protos) just
to read a tensor. It depends on numpy and the standard library only.
"""
