"""The `autocloud diag` and `autocloud webhooks` commands against the API (in-process)."""

import json
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from autocloud.entrypoints.cli import client
from autocloud.entrypoints.cli.main import app
from autocloud.sim.ecus import handle
from autocloud.sim.energy import Powertrain
from tests.api.conftest import NOW, Env, raw
from tests.api.test_diag_api import Outbox, simulated, weak_start

runner = CliRunner()


@pytest.fixture
def cli(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    def connect(self: client.Api, base_url: str | None = None, data_dir: object = None) -> None:
        self.base_url = "http://testserver"
        self._client = env.client
        env.client.headers["Authorization"] = f"Bearer {env.alpha.tokens['admin']}"

    monkeypatch.setattr(client.Api, "__init__", connect)
    monkeypatch.setenv("COLUMNS", "200")
    yield env


def test_diag_sends_and_shows_the_report(cli: Env) -> None:
    box = Outbox()
    assert cli.platform.diagnostics is not None
    cli.platform.diagnostics._send = box
    car = simulated(cli.alpha.vin, Powertrain.ICE)
    weak_start(car)
    done = runner.invoke(app, ["diag", cli.alpha.vin, "--ecu", "ECM", "--ecu", "ABS"])
    assert done.exit_code == 0, done.output
    session = re.search(r"session (ds[0-9a-f]+)", done.output)
    assert session is not None
    for vin, _topic, payload in box.take():
        for topic, reply in handle(car, payload, NOW - 1000):
            cli.ingest(raw(vin, reply, topic))
    cli.platform.diagnostics.sweep()
    shown = runner.invoke(app, ["diag-show", cli.alpha.vin, session.group(1)])
    assert shown.exit_code == 0, shown.output
    assert "complete" in shown.output
    assert cli.alpha.vin in shown.output
    assert "P0562 (0xAF)" in shown.output
    assert "NRC 0x31 RequestOutOfRange" in shown.output  # ABS has no odometer
    assert "EC 0412.03 / BSH MED17.5" in shown.output


def test_webhooks_add_list_deliveries_rm(cli: Env) -> None:
    refused = runner.invoke(app, ["webhooks", "add", "ftp://x.example/", "--event", "alert"])
    assert isinstance(refused.exception, client.CliError)
    assert "http:// or https://" in str(refused.exception)
    service = cli.platform.webhooks
    assert service is not None
    service._policy = replace(service._policy, allow_private=True)
    added = runner.invoke(
        app, ["webhooks", "add", "http://127.0.0.1:9/x", "--event", "alert", "--event", "dtc"]
    )
    assert added.exit_code == 0, added.output
    assert "whsec_" in added.output
    listed = runner.invoke(app, ["webhooks", "list"])
    assert "http://127.0.0.1:9/x" in listed.output and "alert, dtc" in listed.output
    hook_id = json.loads(cli.client.get("/v1/webhooks").text)["items"][0]["id"]
    assert runner.invoke(app, ["webhooks", "deliveries", "--dead"]).exit_code == 0
    removed = runner.invoke(app, ["webhooks", "rm", str(hook_id)])
    assert removed.exit_code == 0 and f"webhook {hook_id} removed" in removed.output
    assert json.loads(cli.client.get("/v1/webhooks").text)["items"] == []
