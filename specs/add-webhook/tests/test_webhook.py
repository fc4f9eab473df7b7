"""Acceptance tests for add-webhook, run from the fork's root."""

import hashlib
import hmac
import http.client
import json
import unittest
from pathlib import Path

from hostapp import app, config, plugins
from hostapp.channels import webhook

SECRET = "s3cret-for-tests"


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookTest(unittest.TestCase):
    def setUp(self):
        self.conf = dict(config.section(config.load(Path("hostapp.toml")), "channels", "webhook"))
        self.conf["port"] = 0
        self.channel = webhook.create(self.conf, {"WEBHOOK_SECRET": SECRET})
        self.seen = []
        self.channel.start(lambda m: (self.seen.append(m), f"got {m.text}")[1])
        self.addCleanup(self.channel.stop)

    def request(self, body=b"", headers=None, method="POST", path=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.channel.port, timeout=5)
        conn.request(method, path or self.conf["path"], body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, json.loads(data) if data else None

    def post(self, payload, signature=None, path=None):
        body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        sig = sign(body) if signature is None else signature
        return self.request(body, {"X-Hub-Signature-256": sig, "Content-Type": "application/json"},
                            path=path)

    def test_config_table_written(self):
        self.assertEqual(self.conf["secret_env"], "WEBHOOK_SECRET")
        self.assertTrue(self.conf["path"].startswith("/"))

    def test_signed_message_gets_reply(self):
        status, data = self.post({"text": "hello", "conversation": "c9", "sender": "ci"})
        self.assertEqual((status, data), (200, {"reply": "got hello"}))
        self.assertEqual((self.seen[0].conversation, self.seen[0].sender), ("c9", "ci"))
        self.assertEqual(self.seen[0].channel, "webhook")

    def test_defaults_for_conversation_and_sender(self):
        self.post({"text": "x"})
        self.assertEqual((self.seen[0].conversation, self.seen[0].sender), ("webhook", "webhook"))

    def test_missing_or_wrong_signature_is_401(self):
        self.assertEqual(self.post({"text": "x"}, signature="")[0], 401)
        self.assertEqual(self.post({"text": "x"}, signature=sign(b"other"))[0], 401)
        self.assertEqual(self.post({"text": "x"}, signature=sign(b'{"text": "x"}', "wrong"))[0], 401)
        self.assertEqual(self.seen, [])

    def test_bad_json_and_missing_text_are_400(self):
        self.assertEqual(self.post(b"not json")[0], 400)
        self.assertEqual(self.post({"text": 5})[0], 400)
        self.assertEqual(self.post([1, 2])[0], 400)

    def test_wrong_path_and_method(self):
        self.assertEqual(self.post({"text": "x"}, path="/elsewhere")[0], 404)
        self.assertEqual(self.request(method="GET")[0], 405)

    def test_oversized_body_is_413_and_not_delivered(self):
        big = json.dumps({"text": "x" * (int(self.conf["max_body_bytes"]) + 10)}).encode()
        self.assertEqual(self.post(big)[0], 413)
        self.assertEqual(self.seen, [])

    def test_no_secret_no_channel(self):
        with self.assertRaises(config.ConfigError):
            webhook.create(self.conf, {})

    def test_discovered_and_built_by_the_host(self):
        self.assertIn("webhook", plugins.discover("channels"))
        conf = config.load(Path("hostapp.toml"))
        conf["channels"] = {"webhook": {**conf["channels"]["webhook"], "port": 0}}
        built = app.build(conf, env={"WEBHOOK_SECRET": SECRET})
        self.assertIn("webhook", built.channels)
        built.start()
        try:
            port = built.channels["webhook"].port
            body = json.dumps({"text": "/echo hi"}).encode()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", conf["channels"]["webhook"]["path"], body=body,
                         headers={"X-Hub-Signature-256": sign(body)})
            self.assertEqual(json.loads(conn.getresponse().read()), {"reply": "hi"})
            conn.close()
        finally:
            built.stop()


if __name__ == "__main__":
    unittest.main()
