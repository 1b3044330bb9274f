import pytest

from serving import flags


def test_both_spellings_and_tf_serving_defaults():
    args = flags.parse(["--model_base_path", "/m", "--model_name=digits", "--port", "9000"])
    assert (args.model_base_path, args.model_name, args.port) == ("/m", "digits", 9000)
    assert args.file_system_poll_wait_seconds == 1
    assert args.enable_model_warmup is True
    assert args.model_config_file_poll_wait_seconds == 0
    assert args.grpc_max_threads > 0


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--enable_model_warmup=false"], False),
        (["--enable_model_warmup", "false"], False),
        (["--enable_model_warmup"], True),
        (["--enable_model_warmup=TRUE"], True),
    ],
)
def test_booleans(argv, expected):
    assert flags.parse(["--model_base_path=/m", *argv]).enable_model_warmup is expected


def test_unknown_argument_is_reported_and_skipped_like_tf_serving(capsys):
    # tensorflow_model_server prints "unknown argument: ..." and the usage, then starts.
    args = flags.parse(["--model_base_path=/m", "--no_such_flag=1", "--port=9000"])
    assert args.port == 9000
    out = capsys.readouterr().out
    assert out.startswith("unknown argument: --no_such_flag=1\n") and "usage:" in out


def test_tf_serving_only_flags_are_accepted_and_reported():
    args = flags.parse(["--model_base_path=/m", "--per_process_gpu_memory_fraction=0.5"])
    assert args.ignored == ["per_process_gpu_memory_fraction"]


def test_start_up_refusals_in_tf_serving_words():
    assert flags.startup_error(flags.parse([])) == (
        "Both server_options.model_base_path and server_options.model_config_file are empty!"
    )
    assert "At least one of server_options.grpc_port or server_options.grpc_socket_path" in (
        flags.startup_error(flags.parse(["--model_base_path=/m", "--port=0"]))
    )
    assert (
        flags.startup_error(
            flags.parse(["--model_base_path=/m", "--port=0", "--grpc_socket_path=/tmp/s"])
        )
        is None
    )
    assert flags.startup_error(flags.parse(["--model_base_path=/m", "--rest_api_port=70000"])) == (
        "--rest_api_port must be in 0..65535, got 70000"
    )
    assert "expected key=value, got 'novalue'" in flags.startup_error(
        flags.parse(["--model_base_path=/m", "--grpc_channel_arguments=novalue"])
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port=notaport"], "Couldn't interpret value notaport for flag port."),
        (
            ["--enable_model_warmup=maybe"],
            "Couldn't interpret value maybe for flag enable_model_warmup.",
        ),
        (
            ["--per_process_gpu_memory_fraction=x"],
            "Couldn't interpret value x for flag per_process_gpu_memory_fraction.",
        ),
    ],
)
def test_bad_values_fail_like_tensorflow_flags(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        flags.parse(["--model_base_path=/m", *argv])
    assert exit_info.value.code == 255  # main() returns -1
    captured = capsys.readouterr()
    assert captured.err.strip() == message
    assert captured.out.startswith("usage:")


def test_channel_arguments():
    assert flags.parse_channel_arguments("grpc.max_connection_age_ms=2000,grpc.x=abc") == [
        ("grpc.max_connection_age_ms", 2000),
        ("grpc.x", "abc"),
    ]
    with pytest.raises(ValueError, match="expected key=value"):
        flags.parse_channel_arguments("novalue")


def test_session_config_file_then_thread_flags_as_tf_serving_applies_them(tmp_path):
    from serving.__main__ import session_config

    path = tmp_path / "session.config"
    path.write_text("intra_op_parallelism_threads: 7\nuse_per_session_threads: true\n")
    base = ["--model_base_path=/m", f"--tensorflow_session_config_file={path}"]
    config = session_config(flags.parse([*base, "--tensorflow_session_parallelism=3"]))
    assert config.use_per_session_threads
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (3, 3)
    config = session_config(flags.parse([*base, "--tensorflow_intra_op_parallelism=2"]))
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (2, 0)
    # Negative values pass through (TensorFlow: inter-op < 0 runs ops in the caller's thread).
    caller = ["--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=-1"]
    config = session_config(flags.parse([*base, *caller]))
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (1, -1)
    every = ["--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=1"]
    assert "You cannot configure all." in flags.startup_error(
        flags.parse([*base, *every, "--tensorflow_session_parallelism=1"])
    )


def test_channel_arguments_win_over_the_servers_defaults():
    from serving.server import MAX_MESSAGE_BYTES, server_options

    defaults = dict(server_options())
    assert defaults["grpc.so_reuseport"] == 0
    assert defaults["grpc.max_receive_message_length"] == MAX_MESSAGE_BYTES
    chosen = server_options(flags.parse_channel_arguments("grpc.so_reuseport=1"))
    assert dict(chosen)["grpc.so_reuseport"] == 1
    assert [key for key, _ in chosen].count("grpc.so_reuseport") == 1


def test_garbage_collector_settled_once_the_server_is_up():
    import gc

    from serving.__main__ import GC_YOUNG_THRESHOLD, settle_garbage_collector

    threshold = gc.get_threshold()
    try:
        settle_garbage_collector()
        assert gc.get_freeze_count() > 0  # what exists at start-up is out of every collection
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == threshold[1:]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
