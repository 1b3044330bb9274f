# syntax=docker/dockerfile:1
# The project's own image: training (the training Job, compose `train`) and load testing
# (the locust master and workers). Code and dependencies are inside, so no pod or
# container installs or fetches anything when it starts.
#
#   make image                      # mnist-serving:<version>       (CPU)
#   make image VARIANT=gpu          # mnist-serving:<version>-gpu   (TensorFlow + CUDA libs)
#
# Two stages: `build` creates the Python environments (pip, wheels, build backends);
# the final stage copies only the finished environments and the sources and runs as an
# unprivileged user, uid 10001, the uid the Kubernetes pods run as.

# An exact tag: the Python the tests run on, on Debian 12. For fully reproducible builds
# add the digest your registry resolves it to (python:3.11.13-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# pyproject.toml extras: train (TensorFlow, reports) and loadtest (locust). The -gpu
# image adds `gpu`, TensorFlow's CUDA libraries from PyPI (the host needs only the
# NVIDIA driver).
ARG EXTRAS=train,loadtest
# on: ship the TF Serving compatibility gate's environment (training.compat), so the
# training Job gates each export without downloading a second TensorFlow at run time.
# off: a smaller image whose exports record that the gate did not run.
ARG SERVING_COMPAT=on
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    SERVING_COMPAT_CACHE=/opt/serving-compat
WORKDIR /src
COPY pyproject.toml README.md ./
COPY training/ training/
COPY serving/ serving/
COPY client/ client/
COPY contract/ contract/
COPY loadtest/ loadtest/
# The project's install step as the README gives it: pip install ".[<extras>]".
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install ".[${EXTRAS}]"
RUN mkdir -p /opt/serving-compat \
    && if [ "${SERVING_COMPAT}" = on ]; then /opt/venv/bin/python -m training.compat --prepare; fi

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin app
# Same paths as in `build`: virtual environments are not relocatable.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/serving-compat /opt/serving-compat
WORKDIR /app
# The sources again (not only the installed copy): training finds data/mnist.npz and
# serving/*.config relative to its package, and locust takes loadtest/locustfile.py by path.
COPY pyproject.toml ./
COPY training/ training/
COPY serving/ serving/
COPY client/ client/
COPY contract/ contract/
COPY loadtest/ loadtest/
COPY data/mnist.npz data/mnist.npz
# HOME=/tmp: Keras and matplotlib write there, and the pods mount /tmp writable on a
# read-only root filesystem.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SERVING_COMPAT_CACHE=/opt/serving-compat \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOME=/tmp
USER 10001:10001
# The default job: train and export the next version (the Kubernetes Job and compose
# `train` say so explicitly; locust services run `locust` instead).
CMD ["python", "-m", "training", "--export-dir", "/models/mnist"]
