"""Acceptance tests for add-scheduler."""

import unittest
from datetime import datetime
from pathlib import Path

from hostapp import app, config, plugins
from hostapp.channels import scheduler


def at(text):
    return datetime.strptime(text, "%Y-%m-%d %H:%M")


class CronTest(unittest.TestCase):
    def test_fields(self):
        c = scheduler.parse_cron("*/15 9-17 * * 1-5")
        self.assertTrue(c.matches(at("2026-12-01 09:45")))   # Tuesday
        self.assertFalse(c.matches(at("2026-12-01 09:50")))
        self.assertFalse(c.matches(at("2026-12-01 18:00")))
        self.assertFalse(c.matches(at("2026-12-06 09:00")))  # Sunday

    def test_lists_and_sunday_as_seven(self):
        c = scheduler.parse_cron("0,30 12 * 1,6 7")
        self.assertTrue(c.matches(at("2026-06-07 12:30")))   # Sunday in June
        self.assertFalse(c.matches(at("2026-07-05 12:30")))  # Sunday in July

    def test_day_of_month_or_weekday(self):
        c = scheduler.parse_cron("0 0 13 * 5")
        self.assertTrue(c.matches(at("2026-11-13 00:00")))   # the 13th (a Friday)
        self.assertTrue(c.matches(at("2026-12-04 00:00")))   # a Friday
        self.assertTrue(c.matches(at("2026-12-13 00:00")))   # the 13th (a Sunday)
        self.assertFalse(c.matches(at("2026-12-05 00:00")))

    def test_invalid_expressions_name_the_field(self):
        for text, field in [("61 * * * *", "minute"), ("* 24 * * *", "hour"),
                            ("* * 0 * *", "day of month"), ("* * * 13 *", "month"),
                            ("* * * * 8", "day of week"), ("* * * * x", "day of week"),
                            ("*/0 * * * *", "minute")]:
            with self.assertRaises(ValueError) as caught:
                scheduler.parse_cron(text)
            self.assertIn(field, str(caught.exception), text)
        with self.assertRaises(ValueError):
            scheduler.parse_cron("* * * *")


class ChannelTest(unittest.TestCase):
    def make(self, jobs):
        delivered = []
        ch = scheduler.create({"jobs": jobs}, {})
        ch.deliver = lambda job, reply: delivered.append((job.conversation, reply))
        return ch, delivered

    def test_fires_once_per_minute(self):
        ch, delivered = self.make([{"cron": "* * * * *", "text": "ping", "conversation": "ops"}])
        handler = lambda m: f"{m.channel}:{m.conversation}:{m.text}"  # noqa: E731
        self.assertEqual(ch.tick(at("2026-12-01 10:00"), handler), [(0, "scheduler:ops:ping")])
        self.assertEqual(ch.tick(at("2026-12-01 10:00"), handler), [])
        self.assertEqual(len(ch.tick(at("2026-12-01 10:01"), handler)), 1)
        self.assertEqual(delivered, [("ops", "scheduler:ops:ping")] * 2)

    def test_only_due_jobs_fire(self):
        ch, _ = self.make([{"cron": "0 9 * * *", "text": "a"}, {"cron": "5 9 * * *", "text": "b"}])
        fired = ch.tick(at("2026-12-01 09:05"), lambda m: m.text)
        self.assertEqual(fired, [(1, "b")])

    def test_bad_job_is_a_config_error(self):
        with self.assertRaises(config.ConfigError) as caught:
            scheduler.create({"jobs": [{"cron": "* * * * *", "text": "ok"},
                                       {"cron": "99 * * * *", "text": "bad"}]}, {})
        self.assertIn("job 2", str(caught.exception))
        with self.assertRaises(config.ConfigError):
            scheduler.create({"jobs": [{"text": "no cron"}]}, {})

    def test_configured_jobs_load_through_the_host(self):
        conf = config.load(Path("hostapp.toml"))
        table = conf["channels"]["scheduler"]
        self.assertIn(table["timezone"], ("utc", "local"))
        self.assertTrue(table["jobs"])
        self.assertIn("scheduler", plugins.discover("channels"))
        conf["channels"] = {"scheduler": table}  # other installed channels are not under test
        built = app.build(conf, env={})
        ch = built.channels["scheduler"]
        self.assertEqual(len(ch.jobs), len(table["jobs"]))


if __name__ == "__main__":
    unittest.main()
