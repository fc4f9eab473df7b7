"""Acceptance tests for add-telegram against a fake Bot API on 127.0.0.1."""

import json
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hostapp import app, config, plugins
from hostapp.channels import telegram

TOKEN = "123456:FAKE-token-for-tests"


class FakeBotAPI:
    """Serves getUpdates from a queue and records every call."""

    def __init__(self):
        self.calls = []
        self.updates = []
        self.fail_with = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                prefix, _, method = self.path.rpartition("/")
                api.calls.append((prefix, method, body))
                if api.fail_with:
                    self.send_response(api.fail_with)
                    self.end_headers()
                    return
                if method == "getUpdates":
                    result = [u for u in api.updates if u["update_id"] >= body.get("offset", 0)]
                else:
                    result = {"message_id": len(api.calls)}
                data = json.dumps({"ok": True, "result": result}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def update(uid, chat, text, user="alice"):
    return {"update_id": uid, "message": {"message_id": uid, "chat": {"id": chat},
                                          "from": {"id": 1, "username": user}, "text": text}}


class TelegramTest(unittest.TestCase):
    def setUp(self):
        self.api = FakeBotAPI()
        self.addCleanup(self.api.close)
        self.conf = dict(config.section(config.load(Path("hostapp.toml")), "channels", "telegram"))
        self.conf.update(api_base=self.api.base, poll_timeout=0)

    def channel(self, **overrides):
        return telegram.create({**self.conf, **overrides}, {"TELEGRAM_BOT_TOKEN": TOKEN})

    def test_config_table_written(self):
        self.assertEqual(self.conf["token_env"], "TELEGRAM_BOT_TOKEN")
        self.assertIn("allowed_chat_ids", self.conf)

    def test_replies_to_each_text_message_and_advances_offset(self):
        self.api.updates = [update(10, 42, "hello"), update(11, 42, "again"),
                            {"update_id": 12, "message": {"chat": {"id": 42}, "sticker": {}}}]
        ch = self.channel()
        answered = ch.poll_once(lambda m: f"re: {m.text} from {m.sender} in {m.conversation}")
        self.assertEqual(answered, 2)
        sends = [c[2] for c in self.api.calls if c[1] == "sendMessage"]
        self.assertEqual(sends, [{"chat_id": 42, "text": "re: hello from alice in 42"},
                                 {"chat_id": 42, "text": "re: again from alice in 42"}])
        self.assertEqual(self.api.calls[0][0], f"/bot{TOKEN}")
        self.assertEqual(self.api.calls[0][2]["allowed_updates"], ["message"])
        self.assertEqual(ch.poll_once(lambda m: "x"), 0)
        self.assertEqual(self.api.calls[-1][2]["offset"], 13)

    def test_allowed_chats(self):
        self.api.updates = [update(1, 42, "mine"), update(2, 7, "spam")]
        ch = self.channel(allowed_chat_ids=[42])
        seen = []
        self.assertEqual(ch.poll_once(lambda m: seen.append(m.conversation) or "ok"), 1)
        self.assertEqual(seen, ["42"])
        self.assertEqual(ch.offset, 3)

    def test_api_failure_raises_without_token(self):
        self.api.fail_with = 502
        with self.assertRaises(telegram.TelegramError) as caught:
            self.channel().poll_once(lambda m: "x")
        self.assertNotIn(TOKEN, str(caught.exception))
        self.assertNotIn(TOKEN, repr(self.channel()))

    def test_unreachable_api_raises_without_token(self):
        ch = self.channel(api_base="http://127.0.0.1:9")
        with self.assertRaises(telegram.TelegramError) as caught:
            ch.poll_once(lambda m: "x")
        self.assertNotIn(TOKEN, str(caught.exception))

    def test_missing_token(self):
        with self.assertRaises(config.ConfigError):
            telegram.create(self.conf, {})

    def test_background_loop_through_the_host(self):
        self.api.updates = [update(5, 99, "/echo ping")]
        conf = config.load(Path("hostapp.toml"))
        conf["channels"] = {"telegram": {**conf["channels"]["telegram"],
                                         "api_base": self.api.base, "poll_timeout": 0}}
        built = app.build(conf, env={"TELEGRAM_BOT_TOKEN": TOKEN})
        self.assertIn("telegram", plugins.discover("channels"))
        built.start()
        try:
            for _ in range(200):
                if any(c[1] == "sendMessage" for c in self.api.calls):
                    break
                threading.Event().wait(0.02)
        finally:
            built.stop()
        sends = [c[2] for c in self.api.calls if c[1] == "sendMessage"]
        self.assertEqual(sends[0], {"chat_id": 99, "text": "ping"})


if __name__ == "__main__":
    unittest.main()
