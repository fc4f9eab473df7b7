import io
import time
import unittest
from pathlib import Path

from hostapp import app, config, plugins
from hostapp.channels.console import ConsoleChannel
from hostapp.core import Assistant, Message
from hostapp.memory.inmemory import InMemory


def msg(text, conversation="c1"):
    return Message("test", conversation, "u", text)


class AssistantTest(unittest.TestCase):
    def setUp(self):
        tools = {name: create({}, {}) for name, create in plugins.discover("tools").items()}
        self.assistant = Assistant("Ada", tools, InMemory())

    def test_plain_text_is_answered_and_counted(self):
        self.assertEqual(self.assistant.handle(msg("hi")), "Ada heard: hi (message 1 in this conversation)")
        self.assertIn("message 2", self.assistant.handle(msg("again")))
        self.assertIn("message 1", self.assistant.handle(msg("other", "c2")))

    def test_tools_and_help(self):
        self.assertEqual(self.assistant.handle(msg("/echo  hello ")), "hello")
        self.assertIn("/echo - repeat the text", self.assistant.handle(msg("/help")))
        self.assertEqual(self.assistant.handle(msg("/nope")), "Unknown command /nope. Try /help.")

    def test_history_shows_earlier_turns(self):
        self.assistant.handle(msg("one"))
        reply = self.assistant.handle(msg("/history 2"))
        self.assertEqual(reply.splitlines()[0], "user: one")

    def test_memory_is_bounded(self):
        memory = InMemory(max_turns=3)
        for i in range(5):
            memory.remember("c", "user", str(i))
        self.assertEqual([t.text for t in memory.recall("c")], ["2", "3", "4"])
        self.assertEqual(memory.recall("c", 0), [])


class AppTest(unittest.TestCase):
    def test_builds_from_shipped_config(self):
        conf = config.load(Path(__file__).parent.parent / "hostapp.toml")
        built = app.build(conf, env={})
        self.assertEqual(sorted(built.channels), ["console"])
        self.assertEqual(built.assistant.name, "Ada")

    def test_unknown_channel_is_a_config_error(self):
        with self.assertRaises(config.ConfigError):
            app.build({"channels": {"carrier-pigeon": {}}}, env={})

    def test_console_channel_round_trip(self):
        out = io.StringIO()
        channel = ConsoleChannel(io.StringIO("hello\n\n/echo x\n"), out)
        assistant = Assistant("Ada", {}, InMemory())
        channel.start(assistant.handle)
        deadline = time.time() + 5
        while out.getvalue().count("\n") < 2 and time.time() < deadline:
            time.sleep(0.01)
        self.assertEqual(out.getvalue().splitlines()[0], "Ada heard: hello (message 1 in this conversation)")

    def test_discovery_finds_folder_plugins(self):
        self.assertIn("console", plugins.discover("channels"))
        self.assertIn("inmemory", plugins.discover("memory"))
        with self.assertRaises(ValueError):
            plugins.discover("gadgets")


if __name__ == "__main__":
    unittest.main()
