"""--ssl_config_file: gRPC over TLS, and mutual TLS, with certificates made here."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.certs import CertificateAuthority, ssl_config_text
from tests.conftest import running_server
from tests.serving.test_server import run_server_cli


def predict(channel) -> int:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 28, 28, 1), np.float32)))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    return stub.Predict(request, timeout=10).model_spec.version.value


@pytest.fixture(scope="module")
def ca():
    return CertificateAuthority()


def test_tls_and_mutual_tls(quick_model, tmp_path, ca):
    server_pair = ca.issue("localhost", server=True)
    client_pair = ca.issue("mnist-client", server=False)
    config = tmp_path / "ssl.config"
    config.write_text(ssl_config_text(server_pair, ca.cert_pem, client_verify=True))
    flags = [
        "--model_name=mnist",
        f"--model_base_path={quick_model.base_path}",
        f"--ssl_config_file={config}",
    ]
    with running_server(flags) as srv:
        assert "(TLS)" in srv.log()
        trusted = grpc.ssl_channel_credentials(
            root_certificates=ca.cert_pem.encode(),
            private_key=client_pair.key_pem.encode(),
            certificate_chain=client_pair.cert_pem.encode(),
        )
        assert predict(grpc.secure_channel(srv.target, trusted)) == 1

        no_client_cert = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.encode())
        for channel in (
            grpc.secure_channel(srv.target, no_client_cert),
            grpc.insecure_channel(srv.target),
        ):
            with pytest.raises(grpc.RpcError) as info:
                predict(channel)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_server_only_tls(quick_model, tmp_path, ca):
    config = tmp_path / "ssl.config"
    config.write_text(ssl_config_text(ca.issue("localhost", server=True)))
    flags = [
        "--model_name=mnist",
        f"--model_base_path={quick_model.base_path}",
        f"--ssl_config_file={config}",
    ]
    with running_server(flags) as srv:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.encode())
        assert predict(grpc.secure_channel(srv.target, credentials)) == 1
        untrusted = grpc.ssl_channel_credentials(
            root_certificates=CertificateAuthority("other").cert_pem.encode()
        )
        with pytest.raises(grpc.RpcError) as info:
            predict(grpc.secure_channel(srv.target, untrusted))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('server_key: "/etc/key.pem"\nserver_cert: "/etc/cert.pem"\n', "must hold the PEM text"),
        ('server_cert: "x"\n', "server_key and server_cert (PEM text) are both required"),
        ("client_verify: maybe\n", "Invalid protobuf file"),
    ],
)
def test_bad_ssl_config_fails_start(tmp_path, text, message):
    config = tmp_path / "ssl.config"
    config.write_text(text)
    result = run_server_cli("--model_base_path=/nowhere", f"--ssl_config_file={config}")
    assert result.returncode == 255  # "Failed to start server. Error: ..." on stdout
    assert message in result.stdout and str(config) in result.stdout
