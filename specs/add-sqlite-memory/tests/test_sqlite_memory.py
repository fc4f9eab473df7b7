"""Acceptance tests for add-sqlite-memory."""

import sqlite3
import tempfile
import threading
import unittest
from pathlib import Path

from hostapp import app, config, plugins
from hostapp.core import Message, Turn
from hostapp.memory import sqlite as sqlite_memory


class SqliteMemoryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.path = Path(self.tmp.name) / "nested" / "memory.sqlite3"

    def open(self, max_turns=100):
        memory = sqlite_memory.create({"path": str(self.path), "max_turns": max_turns}, {})
        self.addCleanup(memory.close)
        return memory

    def test_recall_is_oldest_first_and_limited(self):
        m = self.open()
        for i in range(5):
            m.remember("c", "user", f"t{i}")
        m.remember("other", "user", "x")
        self.assertEqual([t.text for t in m.recall("c", 3)], ["t2", "t3", "t4"])
        self.assertIsInstance(m.recall("c", 1)[0], Turn)
        self.assertEqual(m.recall("c", 0), [])
        self.assertEqual(m.recall("nobody"), [])

    def test_survives_reopen(self):
        m = self.open()
        m.remember("c", "user", "remember me")
        m.close()
        self.assertEqual([t.text for t in self.open().recall("c")], ["remember me"])

    def test_retention(self):
        m = self.open(max_turns=3)
        for i in range(10):
            m.remember("c", "user", str(i))
        m.remember("d", "user", "kept")
        self.assertEqual([t.text for t in m.recall("c", 100)], ["7", "8", "9"])
        db = sqlite3.connect(self.path)
        self.assertEqual(db.execute("SELECT count(*) FROM turns").fetchone()[0], 4)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 1)
        self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        db.close()

    def test_threads_share_one_memory(self):
        m = self.open(max_turns=1000)
        threads = [threading.Thread(target=lambda n=n: [m.remember("c", "user", f"{n}-{i}")
                                                        for i in range(25)]) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(m.recall("c", 1000)), 100)

    def test_host_uses_sqlite_memory(self):
        conf = config.load(Path("hostapp.toml"))
        self.assertEqual(conf["memory"]["backend"], "sqlite")
        self.assertIn("max_turns", conf["memory"])
        self.assertIn("sqlite", plugins.discover("memory"))
        conf["memory"]["path"] = str(self.path)
        conf["channels"] = {}  # channels are not under test
        built = app.build(conf, env={})
        self.addCleanup(built.assistant.memory.close)
        built.assistant.handle(Message("t", "c1", "u", "first"))
        reply = built.assistant.handle(Message("t", "c1", "u", "/history"))
        self.assertIn("user: first", reply)


if __name__ == "__main__":
    unittest.main()
