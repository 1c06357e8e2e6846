"""Alerts: recorded in the run, rate-limited per title, delivered to a real webhook receiver on
127.0.0.1 (reachable only with the documented `alert_allow_private` setting), retried, never
redirected, and never in the way of training."""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import run_cli

import nbtracker
from nbtracker.sdk import alerts
from nbtracker.store import layout
from nbtracker.store.recordlog import read_records


class Receiver:
    """A webhook receiver: every POST is kept as (path, headers, JSON body). Paths choose the
    answer: /fail-N-<token> answers 500 to its first N requests, /redirect-<token> answers 302
    to /landed-<token>; anything else 200."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.got: list[tuple[str, dict, dict]] = []
        self.counts: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.got.append((self.path, dict(self.headers), json.loads(body)))
                n = receiver.counts[self.path] = receiver.counts.get(self.path, 0) + 1
                if self.path.startswith("/fail-"):
                    fails = int(self.path.split("-")[1])
                    self.send_response(500 if n <= fails else 200)
                elif self.path.startswith("/redirect-"):
                    self.send_response(302)
                    self.send_header("Location", self.path.replace("/redirect-", "/landed-"))
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def bodies(self, prefix: str) -> list[dict]:
        return [b for p, _, b in self.got if p.startswith(prefix)]


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def token(request):
    return request.node.name.replace("[", "_").replace("]", "_")


def records(run, t: str) -> list[dict]:
    return [r for r in read_records(Path(run.storage_dir) / layout.LOG_NAME) if r["t"] == t]


def allowed(**more) -> dict:
    return {"alert_allow_private": True, **more}


def test_webhook_and_slack_bodies(receiver, token):
    hook, slack = receiver.url(f"/hook-{token}?key=SECRET"), receiver.url(f"/slack-{token}/T0/B0/xyz")
    run = nbtracker.init(project="al", settings=allowed(alert_webhooks=[hook],
                                                          alert_slack_webhooks=[slack]))
    seen = []
    run.add_event_listener(lambda kind, rec: seen.append((kind, rec["title"])))
    run.alert("Low accuracy", "accuracy 0.2 < 0.3 <!channel> & more", level="WARN")
    run.log({"loss": 1.0})
    run.finish()

    [body] = receiver.bodies(f"/hook-{token}")
    assert body["title"] == "Low accuracy" and body["level"] == "WARN"
    assert body["text"] == "accuracy 0.2 < 0.3 <!channel> & more"
    assert body["run"] == {"id": run.id, "name": run.name, "project": "al"}
    assert body["ts"] == records(run, "alert")[0]["ts"]
    [(path, headers, sbody)] = [g for g in receiver.got if g[0].startswith(f"/slack-{token}")]
    assert path == f"/slack-{token}/T0/B0/xyz" and headers["Content-Type"] == "application/json"
    # Slack: a fallback `text` and blocks; user text cannot mention or link (<!channel>)
    assert "Low accuracy" in sbody["text"] and "<!channel>" not in json.dumps(sbody)
    assert "&lt;!channel&gt; &amp; more" in sbody["blocks"][1]["text"]["text"]
    assert sbody["blocks"][0] == {"type": "header",
                                  "text": {"type": "plain_text", "text": "Low accuracy"}}
    results = records(run, "alert_delivery")
    assert sorted((d["channel"], d["target"], d["ok"]) for d in results) == [
        ("slack", "127.0.0.1", True), ("webhook", "127.0.0.1", True)]
    assert "SECRET" not in json.dumps(results) and "xyz" not in json.dumps(results)
    assert seen == [("alert", "Low accuracy")]
    assert nbtracker.Api().run(run.path).alerts[0]["title"] == "Low accuracy"


def test_rate_limited_per_title(receiver, token):
    run = nbtracker.init(project="al", settings=allowed(alert_webhooks=[receiver.url(f"/r-{token}")]))
    run.alert("nan", "loss is NaN", wait_duration=0.4)
    run.alert("nan", "loss is NaN again", wait_duration=0.4)  # too soon: recorded, not sent
    run.alert("slow", "step took 10 s", wait_duration=timedelta(seconds=0.4))
    time.sleep(0.45)
    run.alert("nan", "loss is NaN once more", wait_duration=0.4)
    run.finish()
    assert [b["text"] for b in receiver.bodies(f"/r-{token}")] == [
        "loss is NaN", "step took 10 s", "loss is NaN once more"]
    alerts_ = nbtracker.Api().run(run.path).alerts
    assert [(a["text"], a.get("suppressed", False)) for a in alerts_] == [
        ("loss is NaN", False), ("loss is NaN again", True), ("step took 10 s", False),
        ("loss is NaN once more", False)]
    assert alerts_[0]["wait_duration"] == 0.4
    shown = run_cli("show", run.path).stdout
    assert "loss is NaN again (not sent: same title within wait_duration)" in shown
    assert "loss is NaN once more (not sent" not in shown


def test_default_wait_is_a_minute_as_in_wandb(receiver, token):
    run = nbtracker.init(project="al", settings=allowed(alert_webhooks=[receiver.url(f"/d-{token}")]))
    run.alert("t", "one")
    run.alert("t", "two")
    run.alert("t", "three", wait_duration=0)  # wandb: 0 means the default
    run.finish()
    assert [b["text"] for b in receiver.bodies(f"/d-{token}")] == ["one"]
    assert [a["wait_duration"] for a in nbtracker.Api().run(run.path).alerts] == [60.0] * 3


def test_retried_after_a_server_error(receiver, token):
    run = nbtracker.init(project="al",
                         settings=allowed(alert_webhooks=[receiver.url(f"/fail-1-{token}")]))
    run.alert("retry me", "x")
    run.finish()
    assert receiver.counts[f"/fail-1-{token}"] == 2
    [d] = records(run, "alert_delivery")
    assert d["ok"] is True and d["attempts"] == 2 and "error" not in d


def test_redirect_not_followed(receiver, token, capsys):
    run = nbtracker.init(project="al",
                         settings=allowed(alert_webhooks=[receiver.url(f"/redirect-{token}")]))
    run.alert("moved", "x")
    run.alert("moved again", "y")
    run.finish()
    assert receiver.counts[f"/redirect-{token}"] == 2
    assert not receiver.bodies(f"/landed-{token}")
    assert [(d["ok"], d["error"]) for d in records(run, "alert_delivery")] == [
        (False, "HTTP 302: redirects are not followed")] * 2
    assert capsys.readouterr().err.count("could not be delivered") == 1


def test_loopback_refused_without_the_setting(receiver, token, capsys):
    url = receiver.url(f"/private-{token}", host="localhost")
    run = nbtracker.init(project="al", settings={"alert_webhooks": [url]})
    run.alert("a", "x")
    for i in range(10):
        run.log({"i": i})
    run.alert("b", "y")
    run.finish()
    assert not receiver.bodies(f"/private-{token}")  # nothing reached it
    err = capsys.readouterr().err
    assert err.count("alert webhook localhost is not used") == 1
    assert "loopback" in err and "alert_allow_private" in err
    assert all(d["ok"] is False and d["error"].startswith("refused") and d["attempts"] == 1
               for d in records(run, "alert_delivery"))
    r = nbtracker.Api().run(run.path)
    assert r.state == "finished" and r.steps == 10 and len(r.alerts) == 2


def test_allowed_through_the_environment(receiver, token, monkeypatch):
    monkeypatch.setenv("NBTRACKER_ALERT_WEBHOOKS", receiver.url(f"/env-{token}"))
    monkeypatch.setenv("NBTRACKER_ALERT_ALLOW_PRIVATE", "true")
    import nbtracker as wandb

    wandb.init(project="al")
    wandb.alert(title="from env", text="t", level=wandb.AlertLevel.WARN)
    wandb.finish()
    [body] = receiver.bodies(f"/env-{token}")
    assert (body["title"], body["level"]) == ("from env", "WARN")


def test_unreachable_webhook_does_not_hold_training(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    run = nbtracker.init(project="al", settings=allowed(
        alert_webhooks=[f"http://127.0.0.1:{port}/hook"]))
    t0 = time.monotonic()
    run.alert("down", "x")
    for i in range(2000):
        run.log({"i": i})
    assert time.monotonic() - t0 < 1.0
    t0 = time.monotonic()
    run.finish()
    assert time.monotonic() - t0 < alerts.DRAIN_SECONDS + 1.0
    err = capsys.readouterr().err
    assert err.count("could not be delivered") == 1 and "connection refused" in err
    [d] = records(run, "alert_delivery")
    assert d["ok"] is False and d["target"] == "127.0.0.1"
    assert nbtracker.Api().run(run.path).state == "finished"


@pytest.mark.slow  # waits out the finish() bound (DRAIN_SECONDS)
def test_webhook_that_never_answers_does_not_hold_finish(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)  # accepts connections, never answers
        run = nbtracker.init(project="al", settings=allowed(
            alert_webhooks=[f"http://127.0.0.1:{s.getsockname()[1]}/hook"]))
        t0 = time.monotonic()
        for i in range(20):
            run.alert(f"a{i}", "x")
        for i in range(2000):
            run.log({"i": i})
        assert time.monotonic() - t0 < 1.0
        t0 = time.monotonic()
        run.finish()
        assert time.monotonic() - t0 < alerts.DRAIN_SECONDS + 1.0
    err = capsys.readouterr().err
    assert err.count("alert deliveries were still waiting when the run finished") == 1
    assert nbtracker.Api().run(run.path).state == "finished"


def test_alerts_on_finish_and_on_failure(receiver, token):
    hook = receiver.url(f"/end-{token}")
    with nbtracker.init(project="al", name="good", settings=allowed(
            alert_webhooks=[hook], alert_on_finish=True, alert_on_failure=True)):
        pass
    with pytest.raises(ZeroDivisionError):
        with nbtracker.init(project="al", name="bad", settings=allowed(
                alert_webhooks=[hook], alert_on_finish=True, alert_on_failure=True)) as run:
            run.log({"x": 1 / 0})
    assert [(b["title"], b["level"]) for b in receiver.bodies(f"/end-{token}")] == [
        ("Run good finished", "INFO"), ("Run bad failed", "ERROR")]
    assert nbtracker.Api().run(run.path).alerts[-1]["title"] == "Run bad failed"


def test_no_end_alert_unless_asked(receiver, token):
    with nbtracker.init(project="al", settings=allowed(alert_webhooks=[receiver.url(f"/n-{token}")])):
        pass
    assert not receiver.bodies(f"/n-{token}")


def test_alerts_in_a_script_go_out_before_it_exits(receiver, token):
    from helpers import run_python

    run_python(f"""
        import nbtracker as wandb
        wandb.init(project="al", settings={{"alert_webhooks": ["{receiver.url(f'/s-{token}')}"],
                                            "alert_allow_private": True,
                                            "alert_on_finish": True}})
        wandb.alert(title="last words", text="t", level=wandb.AlertLevel.ERROR)
    """)  # no finish(): the run is finished at exit
    assert [b["title"] for b in receiver.bodies(f"/s-{token}")][0] == "last words"
    assert len(receiver.bodies(f"/s-{token}")) == 2


@pytest.mark.parametrize("addr", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1",
                                  "169.254.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1",
                                  "240.0.0.1", "::1", "fe80::1", "fd12::1", "::",
                                  "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1",
                                  "64:ff9b::a00:1", "ff02::1"])
def test_private_addresses_refused(addr):
    assert alerts.address_problem(ipaddress.ip_address(addr), allow_private=False)
    assert alerts.address_problem(ipaddress.ip_address(addr), allow_private=True) is None


@pytest.mark.parametrize("addr", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_allowed(addr):
    assert alerts.address_problem(ipaddress.ip_address(addr), allow_private=False) is None


def test_metadata_refused_even_when_private_is_allowed():
    for addr in ("169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"):
        assert "metadata" in alerts.address_problem(ipaddress.ip_address(addr), True)
    ch = alerts.parse_channel("webhook", "http://metadata.google.internal/computeMetadata/v1/")
    with pytest.raises(alerts.Refused):
        alerts.resolve(ch, allow_private=True)


def test_bad_urls_are_one_warning_each(capsys):
    run = nbtracker.init(project="al", settings={"alert_webhooks": [
        "file:///etc/passwd", "ftp://example.com/x", "not a url"]})
    run.alert("a", "x", level="loud")
    run.finish()
    err = capsys.readouterr().err
    assert err.count("alert webhook #1 is not used: only http and https") == 1
    assert err.count("alert webhook #2 is not used") == 1 and "/etc/passwd" not in err
    assert "level must be INFO, WARN or ERROR" in err
    assert nbtracker.Api().run(run.path).alerts[0]["level"] == "INFO"
    assert records(run, "alert_delivery") == []


# -- https: the checked address is connected to, and the certificate checked for the host --------
@pytest.fixture(scope="module")
def tls_receiver(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    r = Receiver(tls=ctx)
    r.cert = d / "cert.pem"
    yield r
    r.server.shutdown()


def test_https_pinned_with_sni_and_certificate_checks(tls_receiver, token, monkeypatch, capsys):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_receiver.cert))  # trust the test certificate
    good = tls_receiver.url(f"/tls-{token}", host="localhost", scheme="https")
    wrong_name = tls_receiver.url(f"/tls-ip-{token}", host="127.0.0.1", scheme="https")
    run = nbtracker.init(project="al", settings=allowed(alert_webhooks=[good, wrong_name]))
    run.alert("secure", "x")
    run.finish()
    assert [b["title"] for b in tls_receiver.bodies(f"/tls-{token}")] == ["secure"]
    assert not tls_receiver.bodies(f"/tls-ip-{token}")  # the certificate does not name 127.0.0.1
    results = {d["target"]: d for d in records(run, "alert_delivery")}
    assert results["localhost"]["ok"] is True
    assert results["127.0.0.1"]["ok"] is False
    assert "certificate" in results["127.0.0.1"]["error"]
