"""Load test scenarios for the MNIST model behind TF Serving's gRPC API.

    locust -f loadtest/locustfile.py --headless -u 64 -r 64 -t 30s \\
        --host localhost:8500 --csv reports/run
    locust -f loadtest/locustfile.py --host localhost:8500        # web UI on :8089

--host is the server's gRPC address without a scheme. --scenario picks what each
request carries (the web UI shows it under custom parameters):

    single   one test digit per Predict (default): online serving
    batch    --batch-size digits per Predict: bulk callers
    labels   one digit per Predict, each to a version label drawn by --label-weights
             (default stable=9,canary=1): a canary rollout's traffic split

Every answer is checked against the digit's label. The options, the thresholds that
decide the exit code among them, are listed by `python -m loadtest --help` (locust's
own --help is printed before it loads a locustfile, so it cannot show them).
"""

from __future__ import annotations

import random

from locust import task

from loadtest import hooks
from loadtest.digits import Digits
from loadtest.digits import load as load_digits
from loadtest.grpc_user import GrpcUser


class MnistUser(GrpcUser):
    """Sends random MNIST test digits and checks every answer against its label.

    Wrong digits are counted in hooks.TALLY, not as failures (loadtest/correctness.py
    says why); an answer the client refuses (not ten probabilities per digit) is a
    failure of its request.
    """

    digits: Digits
    rng: random.Random

    def on_start(self) -> None:
        super().on_start()
        self.digits = load_digits()
        self.rng = random.Random()

    @task
    def predict(self) -> None:
        settings = self.settings
        if settings.scenario == "batch":
            self.predict_digits(settings.batch_size, name=f"Predict batch={settings.batch_size}")
        elif settings.scenario == "labels":
            labels, weights = zip(*settings.label_weights, strict=True)
            label = self.rng.choices(labels, weights)[0]
            self.predict_digits(name=f"Predict label={label}", label=label)
        else:
            self.predict_digits(name="Predict")

    def predict_digits(self, count: int = 1, *, name: str, label: str | None = None) -> None:
        """One Predict of `count` random test digits, reported as `name`, answers checked."""
        images, labels = self.digits.pick(self.rng, count)
        with self.request(name, label=label, digits=count):
            predictions = self.client.predict_tensor(images, batch_size=count, version_label=label)
            wrong = sum(p.digit != int(y) for p, y in zip(predictions, labels, strict=True))
            hooks.TALLY.add(name, predictions[0].version, count, wrong)
