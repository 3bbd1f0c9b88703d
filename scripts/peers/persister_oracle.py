#!/usr/bin/env python3
# The original monasca-persister 9.0.0 (PyPI) as a differential-test oracle
# for the persister guest: generate Kafka message values, render each with the
# original's InfluxDB code, and write what it made of them.
#
#   persister_oracle.py SEED COUNT OUT.jsonl
#
# Run it through scripts/peers/persister_oracle.sh, which creates the venv
# with the original and its pinned dependencies and runs this file with it.
#
# Generation. random.Random(SEED) draws COUNT message values, deterministic
# for a SEED (no hashing, no clock, no set iteration). About 75% are metric
# envelopes for the `metrics` topic, 25% alarm transitions for
# `alarm-state-transitions`; within each topic about 30% are plain valid
# messages and the rest are spread over the edge-case classes registered
# below with @generator (bigint-*, float-*, type-*, duplicate-keys,
# missing-key, unicode, escapes, invalid-json, invalid-utf8, tombstone, ...).
# Values are built as JSON text by hand (JsonText), so that duplicate keys,
# odd number spellings, escapes of every kind, a BOM, broken JSON and invalid
# UTF-8 can be produced; a tombstone (a Kafka record without a value) is None.
#
# Rendering. Each value goes through the original code exactly as its
# persister loop calls it, with a message object whose .value() returns the
# bytes (as confluent-kafka's Message does):
#   metrics                  MetricInfluxdbRepository.process_message(msg)
#   alarm-state-transitions  AlarmStateHistInfluxdbRepository.process_message(None, msg)
# (the alarm one is an instance method that does not use self; the
# repositories' __init__, which connects an InfluxDB client, is not run).
# Importing them needs no configuration: cfg.CONF is only read in __init__.
# process_message returns (line, tenant_id); the original's influxdb client
# then sends '\n'.join(lines).encode('utf-8'), so a line that cannot be
# encoded (a lone surrogate from a \ud800 escape) is an error too. An
# exception from process_message is what the original logs before dropping
# the message ("Error processing message. Message is being dropped.").
#
# The pinned simplejson (3.19.1, as the 2023.2 constraints have it) rejects
# the NaN/Infinity literals by default, so those messages are errors, while
# 1e309 parses to inf (and then fails json.dumps in value_meta).
#
# The interpreter's int/str conversion limit is set to Python's default
# (4300 digits): it decides whether huge integers parse (simplejson calls
# int()) and print (str(int(timestamp))).
#
# Output: one JSON object a line, in generation order:
#   {"topic": T, "value": BASE64|null, "class": C, "line": L, "tenant": S}
#   {"topic": T, "value": BASE64|null, "class": C, "error": "Type: message"}
# with json.dumps(ensure_ascii=True); "line" and "tenant" never hold a lone
# surrogate (those are errors), error messages have them backslash-escaped.
# A summary per class goes to stderr.

import base64
import json
import random
import sys

METRICS = "metrics"
ALARMS = "alarm-state-transitions"
METRICS_SHARE = 0.75
VALID_SHARE = 0.30
INT_MAX_STR_DIGITS = 4300


# --------------------------------------------------------------------------
# JSON text, built by hand

class Raw(str):
    """JSON text written as it is: odd number spellings, literals, breakage."""


class Obj:
    """A JSON object as (key, value) pairs, so that keys may repeat."""

    def __init__(self, pairs):
        self.pairs = list(pairs)


SHORT_ESCAPES = {'"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f',
                 '\n': '\\n', '\r': '\\r', '\t': '\\t'}
JSON_WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", " \n  ", "\r"]


class JsonText:
    """Writes Python values as JSON text.

    escape: "min" writes non-ASCII characters as they are (UTF-8 in the
    end), "ascii" writes all of them as \\uXXXX (astral ones as surrogate
    pairs), "mixed" picks per character and also varies the escape of
    control characters, quotes and '/'. Surrogate code points (lone
    surrogates in a Python str) are always written as \\uXXXX escapes.
    spacing: "compact" (',' ':'), "spaced" (', ' ': ') or "noisy" (random
    JSON whitespace around every token).
    trailing_commas: put a comma after the last member of some non-empty
    objects and arrays (not JSON; .trailing_commas_written counts them).
    """

    def __init__(self, rng, escape="min", spacing="compact", trailing_commas=False):
        self.rng = rng
        self.escape = escape
        self.spacing = spacing
        self.trailing_commas = trailing_commas
        self.trailing_commas_written = 0

    def text(self, value):
        parts = []
        self._value(value, parts)
        return "".join(parts)

    def bytes(self, value):
        return self.text(value).encode("utf-8")

    def _ws(self):
        if self.spacing == "noisy" and self.rng.random() < 0.5:
            return self.rng.choice(JSON_WHITESPACE)
        return ""

    def _comma(self):
        if self.spacing == "spaced":
            return ", "
        return self._ws() + "," + self._ws()

    def _colon(self):
        if self.spacing == "spaced":
            return ": "
        return self._ws() + ":" + self._ws()

    def _trailing_comma(self, out, members):
        if self.trailing_commas and members and self.rng.random() < 0.4:
            out.append(",")
            self.trailing_commas_written += 1

    def _value(self, v, out):
        if isinstance(v, Raw):
            out.append(str(v))
        elif v is None:
            out.append("null")
        elif v is True:
            out.append("true")
        elif v is False:
            out.append("false")
        elif isinstance(v, int):
            out.append(str(v))  # huge integers are written as Raw digits
        elif isinstance(v, float):
            out.append(float_text(v))
        elif isinstance(v, str):
            out.append(self._string(v))
        elif isinstance(v, (dict, Obj)):
            pairs = v.pairs if isinstance(v, Obj) else list(v.items())
            out.append("{" + self._ws())
            for i, (key, item) in enumerate(pairs):
                if i:
                    out.append(self._comma())
                out.append(key if isinstance(key, Raw) else self._string(key))
                out.append(self._colon())
                self._value(item, out)
            self._trailing_comma(out, pairs)
            out.append(self._ws() + "}")
        elif isinstance(v, list):
            out.append("[" + self._ws())
            for i, item in enumerate(v):
                if i:
                    out.append(self._comma())
                self._value(item, out)
            self._trailing_comma(out, v)
            out.append(self._ws() + "]")
        else:
            raise TypeError("cannot write %r as JSON" % (v,))

    def _u(self, cp):
        text = "\\u%04x" % cp
        if self.escape == "mixed" and self.rng.random() < 0.5:
            text = "\\u%04X" % cp
        return text

    def _string(self, s):
        mixed = self.escape == "mixed"
        out = ['"']
        for ch in s:
            cp = ord(ch)
            if ch in SHORT_ESCAPES:
                if mixed and self.rng.random() < 0.3:
                    out.append(self._u(cp))
                else:
                    out.append(SHORT_ESCAPES[ch])
            elif cp < 0x20:
                out.append(self._u(cp))
            elif 0xD800 <= cp <= 0xDFFF:
                out.append(self._u(cp))
            elif ch == "/" and mixed and self.rng.random() < 0.5:
                out.append("\\/")
            elif cp < 0x7F:
                out.append(ch)
            elif self.escape == "ascii" or (mixed and self.rng.random() < 0.5):
                if cp > 0xFFFF:
                    cp -= 0x10000
                    out.append(self._u(0xD800 + (cp >> 10)))
                    out.append(self._u(0xDC00 + (cp & 0x3FF)))
                else:
                    out.append(self._u(cp))
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)


def float_text(x):
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)


# --------------------------------------------------------------------------
# Value pools

NAMES = ["cpu.idle_perc", "cpu.user_perc", "mem.free_mb", "mem.usable_perc",
         "disk.space_used_perc", "disk.inode_used_perc", "net.in_bytes_sec",
         "net.out_packets_sec", "load.avg_1_min", "http_status",
         "process.pid_count", "vm.cpu.utilization_perc", "monasca.thread_count",
         "kafka.consumer_lag", "mysql.innodb.buffer_pool_used",
         "swift.diskusage.host.val.avail", "image.size", "ntp.offset"]
DIM_VALUES = {
    "hostname": ["compute-01", "compute-02", "controller-01", "devstack",
                 "storage-7.example.org"],
    "service": ["monitoring", "compute", "object-storage", "kafka"],
    "component": ["monasca-agent", "nova-compute", "persister"],
    "device": ["/dev/vda1", "eth0", "sda", "tap0e2f"],
    "mount_point": ["/", "/var/lib/nova", "/boot"],
    "url": ["http://10.0.0.1:8070/healthcheck", "https://api.example.org/v2.0"],
    "resource_id": ["3f6a1c2e-9b7d-4e1f-a0b2-c3d4e5f60718"],
    "process_name": ["monasca-api", "kafka.Kafka"],
    "zone": ["nova", "az-1"],
}
TENANTS = ["0f1c8f4a7a9e4b5b9c1d2e3f40516273", "a9e3c1f0b2d44e6f8a7b9c0d1e2f3a4b",
           "admin", "t1"]
REGIONS = ["RegionOne", "RegionTwo", "useast", "r1"]
STATES = ["OK", "ALARM", "UNDETERMINED"]

# Integers beyond 64 bits (and the edges of 64 bits), as JSON text.
BIG_INTS = ["18446744073709551616", "18446744073709551615",
            "9223372036854775807", "9223372036854775808",
            "-9223372036854775808", "-9223372036854775809",
            "-18446744073709551617", "9007199254740993", "-9007199254740993",
            "340282366920938463463374607431768211456",
            "1" + "0" * 30, "1" + "0" * 308, "1" + "0" * 309, "-" + "9" * 400,
            "179769313486231570814527423731704356798070567525844996598917476803"
            "157260780028538760589558632766878171540458953514382464234321326889"
            "464182768467546703537516986049910576551282076245490090389328944075"
            "868508455133942304583236903222948165808559332123348274797826204144"
            "723168738177180919299881250404026184124858368"]

# Floats that are hard to parse or print, and spellings of them.
FLOAT_LITERALS = ["-0", "-0.0", "0.0", "0", "0e0", "-0e-0", "0.0E+0",
                  "1e308", "1e309", "-1e309", "1E400", "5e-324", "-5e-324",
                  "2.4703282292062328e-324", "2.4703282292062327e-324",
                  "1e-324", "-1e-400", "4.9406564584124654e-324",
                  "2.2250738585072014e-308", "2.2250738585072011e-308",
                  "1.7976931348623157e308", "1.7976931348623158e+308",
                  "1.7976931348623159e308", "0.1", "0.30000000000000004",
                  "9007199254740993.0", "123456789012345678",
                  "123456789012345678901234567890.5", "1e16", "1e15", "1e22",
                  "1e23", "1E5", "1e+5", "1E-5", "1e-05", "1e05", "-1.5e-05",
                  "1.0e0", "1.5E+3", "12345678.9", "0.000001", "0.0000001",
                  "100000000000000000000.0", "3.141592653589793",
                  "2.718281828459045", "0.1e1", "10E-1", "-1234.5678E-2",
                  "1.00000000000000011102230246251565404236316680908203125"]
NAN_LITERALS = ["NaN", "Infinity", "-Infinity"]

# Strings that float() or int() may or may not read as numbers.
NUMERIC_STRINGS = ["1.5", " 2 ", "\t3\n", "1_000", "1__0", "_1", "1_", "inf",
                   "-inf", "+inf", "Infinity", "iNfInItY", "nan", "NaN", "-nan",
                   "1e3", "1E3", "1e", "0x10", "0b1", "0o7", "", " ", "١٢",
                   "１２", "๑", "\U0001d7cf", "+5", "-0", "-0.0", ".5", "5.",
                   "1e309", "1,5", "12abc", "1.5e-3", "\u00a012", "12\u2028",
                   "1700000000000", " 1700000000000 ", "1_700_000_000_000",
                   "9" * 400, "1" * 5000, "\x0012", "0" * 30 + "7"]

# Values of the wrong JSON type.
WRONG_TYPES = [True, False, None, [], {}, [1, "a"], {"k": "v"},
               {"a": {"b": [1, 2.5, None]}}, "", "text", 0, -1, 1.5,
               Raw("1E2"), ["é", "\u2028", "\x00"], {"k": "\ud800"},
               {"x": [True, None]}, [[[]]], Raw("-0"), "None", "True"]


def uuid(rng):
    return "%08x-%04x-4%03x-8%03x-%012x" % (
        rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
        rng.getrandbits(12), rng.getrandbits(48))


def big_int(rng):
    if rng.random() < 0.6:
        return Raw(rng.choice(BIG_INTS))
    digits = str(rng.randint(1, 9)) + "".join(
        rng.choice("0123456789") for _ in range(rng.randint(19, 80)))
    return Raw(rng.choice(["", "-"]) + digits)


def float_literal(rng):
    """A float as JSON text: a hard case, or a 17-digit one, respelled."""
    if rng.random() < 0.6:
        return Raw(rng.choice(FLOAT_LITERALS))
    x = rng.random() * 10.0 ** rng.randint(-30, 30) * rng.choice([1, -1])
    text = repr(x)
    if rng.random() < 0.5:
        mantissa, _, exp = text.partition("e")
        exponent = int(exp) if exp else 0
        text = "%s%s%s%s" % (mantissa, rng.choice("eE"),
                             rng.choice(["", "+"]) if exponent >= 0 else "-",
                             "0" * rng.randint(0, 2) + str(abs(exponent)))
    return Raw(text)


def plain_value(rng):
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randint(0, 100)
    if kind == 1:
        return rng.randint(-10 ** 6, 10 ** 9)
    if kind == 2:
        return round(rng.uniform(0, 100), rng.randint(0, 3))
    if kind == 3:
        return round(rng.uniform(-1e6, 1e6), 2)
    return rng.choice([0.0, 1.0, 97.5, 1.25, 12034.0, 0.001])


def timestamp_ms(rng):
    return 1700000000000 + rng.randrange(10 ** 9)


def plain_dims(rng):
    keys = sorted(DIM_VALUES)
    rng.shuffle(keys)
    return {k: rng.choice(DIM_VALUES[k]) for k in keys[:rng.randint(0, 4)]}


def shuffled(rng, d, p=0.3):
    """The dict, with its key order shuffled now and then."""
    if rng.random() >= p:
        return d
    items = list(d.items())
    rng.shuffle(items)
    return dict(items)


def text_writer(rng):
    """The writer of a plain message: compact or spaced, raw or \\u escapes."""
    return JsonText(rng, escape=rng.choice(["min", "min", "ascii"]),
                    spacing=rng.choice(["compact", "spaced"]))


def pick(rng, seq, k):
    items = list(seq)
    rng.shuffle(items)
    return items[:k]


# --------------------------------------------------------------------------
# Plain messages

def base_metric(rng):
    metric = {"name": rng.choice(NAMES), "dimensions": plain_dims(rng),
              "timestamp": timestamp_ms(rng), "value": plain_value(rng)}
    if rng.random() < 0.4:
        metric["value_meta"] = rng.choice([
            None, {}, {"status": "ok"}, {"rc": 0, "msg": "done in 3 s"},
            {"url": "http://10.0.0.1/", "http_status": 200},
            {"detail": {"tries": [1, 2], "ok": True}}])
    envelope = {"metric": shuffled(rng, metric),
                "meta": shuffled(rng, {"tenantId": rng.choice(TENANTS),
                                       "region": rng.choice(REGIONS)})}
    if rng.random() < 0.8:
        envelope["creation_time"] = envelope["metric"]["timestamp"] // 1000
    return shuffled(rng, envelope, 0.2)


def base_alarm(rng):
    name = rng.choice(NAMES)
    dims = plain_dims(rng) or {"hostname": "compute-01"}
    periods = rng.randint(1, 4)
    threshold = rng.choice([10.0, 90.0, 0.5, 100, 1, 5.25])
    old, new = pick(rng, STATES, 2)
    values = [round(rng.uniform(0, 100), rng.randint(0, 3)) for _ in range(periods)]
    function = rng.choice(["AVG", "MAX", "MIN", "SUM", "COUNT", "LAST"])
    operator = rng.choice(["LT", "LTE", "GT", "GTE"])
    sub_dims = dict(list(dims.items())[:1])
    reason = ("Thresholds were exceeded for the sub-alarms: %s(%s{%s}, 60) %s "
              "%s times %d with the values: %s" % (
                  function.lower(), name,
                  ",".join("%s=%s" % kv for kv in sub_dims.items()),
                  operator, threshold, periods, values))
    sub_alarm = {
        "subAlarmExpression": {
            "function": function,
            "metricDefinition": {"name": name, "dimensions": sub_dims},
            "operator": operator, "threshold": threshold, "period": 60,
            "periods": periods},
        "subAlarmState": new, "currentValues": values}
    body = {
        "tenantId": rng.choice(TENANTS), "alarmId": uuid(rng),
        "alarmDefinitionId": uuid(rng),
        "alarmName": rng.choice(["High CPU usage", "Disk almost full",
                                 "Host unreachable"]),
        "alarmDescription": rng.choice(["", "CPU idle below 10%"]),
        "metrics": [{"id": None, "name": name, "dimensions": dims}],
        "oldState": old, "newState": new,
        "actionsEnabled": rng.random() < 0.8, "stateChangeReason": reason,
        "severity": rng.choice(["LOW", "MEDIUM", "HIGH", "CRITICAL"]),
        "link": rng.choice([None, None, "http://runbooks.example.org/disk-full"]),
        "lifecycleState": rng.choice([None, None, "OPEN", "ACKNOWLEDGED"]),
        "subAlarms": [sub_alarm] * rng.randint(1, 2),
        "timestamp": timestamp_ms(rng)}
    return {"alarm-transitioned": shuffled(rng, body, 0.2)}


def base_message(rng, topic):
    return base_metric(rng) if topic == METRICS else base_alarm(rng)


# --------------------------------------------------------------------------
# Generators: fn(rng, topic) -> bytes, or None for a tombstone

def gen_valid(rng, topic):
    return text_writer(rng).bytes(base_message(rng, topic))


# VALID_SHARE of each topic's messages are plain ones; the rest are drawn
# from the edge-case classes of the topic, by weight.
VALID = {METRICS: "valid-metric", ALARMS: "valid-alarm"}
GENERATORS = {METRICS: [], ALARMS: []}
BOTH = (METRICS, ALARMS)


def generator(name, topics=(METRICS,), weight=1.0):
    def register(fn):
        for topic in topics:
            GENERATORS[topic].append((name, weight, fn))
        return fn
    return register


# ---- metrics: numbers

@generator("bigint-value")
def gen_bigint_value(rng, topic):
    env = base_metric(rng)
    env["metric"]["value"] = big_int(rng)
    return text_writer(rng).bytes(env)


@generator("bigint-timestamp")
def gen_bigint_timestamp(rng, topic):
    env = base_metric(rng)
    env["metric"]["timestamp"] = big_int(rng)
    return text_writer(rng).bytes(env)


@generator("bigint-value-meta")
def gen_bigint_value_meta(rng, topic):
    env = base_metric(rng)
    env["metric"]["value_meta"] = rng.choice([
        {"n": big_int(rng)},
        {"a": [big_int(rng), 1, big_int(rng)], "b": "x"},
        {"deep": {"er": {"n": big_int(rng)}}, "f": 1.5}])
    return text_writer(rng).bytes(env)


@generator("bigint-dimension")
def gen_bigint_dimension(rng, topic):
    env = base_metric(rng)
    where = rng.randrange(4)
    if where == 0:
        env["metric"].setdefault("dimensions", {})["big"] = big_int(rng)
    elif where == 1:
        env["meta"]["tenantId"] = big_int(rng)
    elif where == 2:
        env["meta"]["region"] = big_int(rng)
    else:
        env["metric"]["name"] = big_int(rng)
    return text_writer(rng).bytes(env)


@generator("huge-int-digits", weight=0.6)
def gen_huge_int_digits(rng, topic):
    # Around Python's 4300-digit limit for int <-> str conversion.
    env = base_metric(rng)
    n = rng.choice([4299, 4300, 4301, 5000])
    digits = Raw(rng.choice(["", "-"]) + "1" + "0" * (n - 1))
    where = rng.choice(["value", "timestamp", "value_meta", "dimension"])
    if where == "value_meta":
        env["metric"]["value_meta"] = {"n": digits}
    elif where == "dimension":
        env["metric"].setdefault("dimensions", {})["n"] = digits
    else:
        env["metric"][where] = digits
    return text_writer(rng).bytes(env)


@generator("float-value")
def gen_float_value(rng, topic):
    env = base_metric(rng)
    env["metric"]["value"] = float_literal(rng)
    return text_writer(rng).bytes(env)


@generator("float-timestamp")
def gen_float_timestamp(rng, topic):
    env = base_metric(rng)
    env["metric"]["timestamp"] = rng.choice([
        Raw("1700000000000.0"), Raw("1700000000000.9"), Raw("1.7e12"),
        Raw("1.7E+12"), Raw("1700000000000e0"), Raw("-1.5"),
        Raw("1e20"), Raw("1e309"), Raw("-1E400"), float_literal(rng),
        float_literal(rng)])
    return text_writer(rng).bytes(env)


@generator("float-value-meta")
def gen_float_value_meta(rng, topic):
    env = base_metric(rng)
    env["metric"]["value_meta"] = rng.choice([
        {"x": float_literal(rng)},
        {"list": [float_literal(rng), float_literal(rng)], "s": "ok"},
        {"a": {"b": float_literal(rng)}, "c": float_literal(rng)}])
    return text_writer(rng).bytes(env)


@generator("nan-infinity")
def gen_nan_infinity(rng, topic):
    # Not JSON; simplejson >= 3.19 rejects the literals by default.
    env = base_metric(rng)
    lit = Raw(rng.choice(NAN_LITERALS))
    where = rng.choice(["value", "timestamp", "value_meta", "dimension", "tenant"])
    if where in ("value", "timestamp"):
        env["metric"][where] = lit
    elif where == "value_meta":
        env["metric"]["value_meta"] = {"x": lit}
    elif where == "dimension":
        env["metric"].setdefault("dimensions", {})["x"] = lit
    else:
        env["meta"]["tenantId"] = lit
    return text_writer(rng).bytes(env)


@generator("numeric-string-value")
def gen_numeric_string_value(rng, topic):
    env = base_metric(rng)
    env["metric"]["value"] = rng.choice(NUMERIC_STRINGS)
    return text_writer(rng).bytes(env)


@generator("numeric-string-timestamp")
def gen_numeric_string_timestamp(rng, topic):
    env = base_metric(rng)
    env["metric"]["timestamp"] = rng.choice(NUMERIC_STRINGS)
    return text_writer(rng).bytes(env)


# ---- metrics: types

@generator("type-value")
def gen_type_value(rng, topic):
    env = base_metric(rng)
    env["metric"]["value"] = rng.choice(WRONG_TYPES)
    return text_writer(rng).bytes(env)


@generator("type-timestamp")
def gen_type_timestamp(rng, topic):
    env = base_metric(rng)
    env["metric"]["timestamp"] = rng.choice(WRONG_TYPES)
    return text_writer(rng).bytes(env)


@generator("type-name")
def gen_type_name(rng, topic):
    env = base_metric(rng)
    env["metric"]["name"] = rng.choice(WRONG_TYPES + [float_literal(rng)])
    return text_writer(rng).bytes(env)


@generator("type-meta")
def gen_type_meta(rng, topic):
    env = base_metric(rng)
    key = rng.choice(["tenantId", "region", "tenantId", "region", "both"])
    if key == "both":
        env["meta"] = {"tenantId": rng.choice(WRONG_TYPES),
                       "region": rng.choice(WRONG_TYPES)}
    else:
        env["meta"][key] = rng.choice(WRONG_TYPES + [float_literal(rng)])
    return text_writer(rng).bytes(env)


@generator("type-envelope")
def gen_type_envelope(rng, topic):
    env = base_metric(rng)
    env[rng.choice(["metric", "meta"])] = rng.choice(
        [None, [], "x", 1, True, [{"name": "a"}], "{\"name\": \"a\"}"])
    return text_writer(rng).bytes(env)


@generator("type-dimensions")
def gen_type_dimensions(rng, topic):
    env = base_metric(rng)
    if rng.random() < 0.35:
        env["metric"]["dimensions"] = rng.choice(
            [None, [], ["hostname", "h1"], "hostname=h1", 1, True, False, 0, ""])
    else:
        dims = env["metric"].get("dimensions") or {"hostname": "h1"}
        for key in pick(rng, ["hostname", "weird", "zz", "_a"], rng.randint(1, 2)):
            dims[key] = rng.choice(WRONG_TYPES + [float_literal(rng)])
        env["metric"]["dimensions"] = dims
    return text_writer(rng).bytes(env)


@generator("type-value-meta")
def gen_type_value_meta(rng, topic):
    env = base_metric(rng)
    env["metric"]["value_meta"] = rng.choice(
        WRONG_TYPES + [[{"a": 1}], "{\"a\": 1}", {"a": None}, {"": ""}])
    return text_writer(rng).bytes(env)


# ---- metrics: structure

def dup_object(rng, d, key, values):
    """d as an Obj whose `key` appears once per value, at varied places."""
    pairs = list(d.items())
    pairs = [(k, v) for k, v in pairs if k != key]
    for value in values:
        pairs.insert(rng.randint(0, len(pairs)), (key, value))
    return Obj(pairs)


@generator("duplicate-keys", topics=(METRICS,), weight=1.5)
def gen_duplicate_keys_metric(rng, topic):
    env = base_metric(rng)
    metric, meta = env["metric"], env["meta"]
    level = rng.choice(["metric", "meta", "dimensions", "value_meta", "envelope",
                        "nested-value-meta"])
    if level == "metric":
        key = rng.choice(["name", "value", "timestamp", "dimensions", "value_meta"])
        good = metric.get(key, {"a": 1})
        values = [rng.choice([good, "abc", None, Raw("1E2"), "dup"]), good]
        rng.shuffle(values)
        env["metric"] = dup_object(rng, metric, key, values)
    elif level == "meta":
        key = rng.choice(["tenantId", "region"])
        env["meta"] = dup_object(rng, meta, key, [meta[key], rng.choice(TENANTS + [None, 5])])
    elif level == "dimensions":
        dims = metric.get("dimensions") or {"hostname": "h1"}
        key = rng.choice(list(dims) + ["_tenant_id", "zz"])
        values = [rng.choice(["a", "b", "a b", 1, None]) for _ in range(rng.randint(2, 3))]
        metric["dimensions"] = dup_object(rng, dims, key, values)
    elif level == "value_meta":
        vm = {"a": 1, "b": "two", "c": [3]}
        key = rng.choice(["a", "b", "c", "d"])
        metric["value_meta"] = dup_object(rng, vm, key, [rng.choice([9, "x", None, {}, []])
                                                         for _ in range(2)])
    elif level == "nested-value-meta":
        inner = dup_object(rng, {"x": 1, "y": 2}, rng.choice("xyz"), [3, "4"])
        metric["value_meta"] = {"outer": inner, "k": "v"}
    else:
        key = rng.choice(["metric", "meta", "creation_time"])
        other = base_metric(rng)
        values = [env.get(key, 1), other.get(key, 2)]
        if rng.random() < 0.3:
            values[0] = rng.choice([None, "x", []])
            rng.shuffle(values)
        env = dup_object(rng, env, key, values)
    return text_writer(rng).bytes(env)


@generator("missing-key")
def gen_missing_key(rng, topic):
    env = base_metric(rng)
    for path in pick(rng, [("metric",), ("meta",), ("metric", "name"),
                           ("metric", "timestamp"), ("metric", "value"),
                           ("meta", "tenantId"), ("meta", "region")],
                     rng.choice([1, 1, 1, 2])):
        parent = env
        for key in path[:-1]:
            parent = parent.get(key, {})
        parent.pop(path[-1], None)
    return text_writer(rng).bytes(env)


@generator("missing-optional")
def gen_missing_optional(rng, topic):
    env = base_metric(rng)
    env["metric"]["value_meta"] = {"k": "v"}
    for path in pick(rng, [("metric", "dimensions"), ("metric", "value_meta"),
                           ("creation_time",)], rng.randint(1, 3)):
        (env["metric"] if len(path) == 2 else env).pop(path[-1], None)
    if rng.random() < 0.3:
        env["metric"]["dimensions"] = {}
    return text_writer(rng).bytes(env)


@generator("extra-fields")
def gen_extra_fields(rng, topic):
    env = base_metric(rng)
    env["creation_time"] = rng.choice([None, "now", [], big_int(rng), Raw("1e309"),
                                       -1, 1.5, {"a": 1}])
    env["metric"]["unit"] = rng.choice(["%", None, 5])
    env["meta"]["project_id"] = "p"
    env[rng.choice(["extra", "metrics", "Metric"])] = {"name": "ignored"}
    return text_writer(rng).bytes(env)


@generator("reserved-dimension-keys")
def gen_reserved_dimension_keys(rng, topic):
    env = base_metric(rng)
    dims = env["metric"].get("dimensions") or {}
    for key in pick(rng, ["_tenant_id", "_region", "_tenant_id ", "_Region",
                          "_tenant_id\u0000", "tenantId"], rng.randint(1, 3)):
        dims[key] = rng.choice(["spoofed", "", None, 1, "t1", "RegionOne"])
    env["metric"]["dimensions"] = shuffled(rng, dims, 0.5)
    return text_writer(rng).bytes(env)


# ---- metrics: strings

UNICODE_PIECES = ["é", "ü", "Ω", "中文", "日本語", "\U0001f600", "\U0001d11e",
                  "\u2028", "\u2029", "\ufeff", "\u200b", "e\u0301", "ﬁ",
                  "\uffff", "\U0010ffff", "\u00a0", "\u0085", "ascii", " ", "-"]
LONE_SURROGATES = ["\ud800", "\udfff", "\udbff", "\udc00", "\ude00\ud83d"]
ESCAPE_PIECES = ['"', "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f",
                 "\x7f", "a", " ", "é", '\\"', "\\n"]
LINE_PIECES = [" ", ",", "=", "\\", "#", '"', "'", "\n", "a", "b", "\\ ",
               "\\,", "\\=", "=\"", "\\\\"]


def mixed_string(rng, pieces, lone=False):
    parts = [rng.choice(pieces) for _ in range(rng.randint(1, 6))]
    if lone:
        parts.insert(rng.randint(0, len(parts)), rng.choice(LONE_SURROGATES))
    return "".join(parts)


def plant_strings(rng, env, make):
    """Put strings made by make() into one or more string places of a metric."""
    metric, meta = env["metric"], env["meta"]
    places = pick(rng, ["name", "name-prefix", "dim-key", "dim-value",
                        "vm-key", "vm-value", "tenant", "region"],
                  rng.randint(1, 3))
    for place in places:
        if place == "name":
            metric["name"] = make()
        elif place == "name-prefix":
            metric["name"] = make() + metric["name"]
        elif place == "dim-key":
            metric.setdefault("dimensions", {})[make()] = "v"
        elif place == "dim-value":
            metric.setdefault("dimensions", {})["k"] = make()
        elif place == "vm-key":
            metric["value_meta"] = {make(): "v", "n": 1}
        elif place == "vm-value":
            metric["value_meta"] = {"msg": make()}
        elif place == "tenant":
            meta["tenantId"] = make()
        else:
            meta["region"] = make()


@generator("unicode", topics=(METRICS,))
def gen_unicode_metric(rng, topic):
    env = base_metric(rng)
    lone = rng.random() < 0.3
    plant_strings(rng, env, lambda: mixed_string(rng, UNICODE_PIECES, lone))
    writer = JsonText(rng, escape=rng.choice(["min", "ascii", "mixed"]),
                      spacing=rng.choice(["compact", "spaced"]))
    return writer.bytes(env)


@generator("escapes", topics=(METRICS,))
def gen_escapes_metric(rng, topic):
    env = base_metric(rng)
    lone = rng.random() < 0.15
    plant_strings(rng, env, lambda: mixed_string(rng, ESCAPE_PIECES, lone))
    return JsonText(rng, escape="mixed", spacing="compact").bytes(env)


@generator("line-syntax")
def gen_line_syntax(rng, topic):
    # Characters that mean something in InfluxDB line protocol.
    env = base_metric(rng)
    plant_strings(rng, env, lambda: mixed_string(rng, LINE_PIECES))
    if rng.random() < 0.4:
        env["metric"]["name"] = rng.choice(["#", "# comment", "#cpu", " cpu",
                                            "cpu ", "a,b", "a=b", "c:\\", "\\"])
    return text_writer(rng).bytes(env)


@generator("empty-strings")
def gen_empty_strings(rng, topic):
    env = base_metric(rng)
    metric, meta = env["metric"], env["meta"]
    for place in pick(rng, ["name", "dim-key", "dim-value", "tenant", "region",
                            "vm-key", "vm-value", "vm", "value", "timestamp"],
                      rng.randint(1, 3)):
        if place in ("name", "value", "timestamp"):
            metric[place] = ""
        elif place == "dim-key":
            metric.setdefault("dimensions", {})[""] = "v"
        elif place == "dim-value":
            metric.setdefault("dimensions", {})["k"] = ""
        elif place == "tenant":
            meta["tenantId"] = ""
        elif place == "region":
            meta["region"] = ""
        elif place == "vm-key":
            metric["value_meta"] = {"": "v"}
        elif place == "vm-value":
            metric["value_meta"] = {"k": ""}
        else:
            metric["value_meta"] = ""
    return text_writer(rng).bytes(env)


def deep(rng, depth, leaf):
    value = leaf
    for level in range(depth):
        if rng.random() < 0.7:
            value = {"l%d" % (depth - level): value}
            if rng.random() < 0.2:
                value["s"] = level
        else:
            value = [value] if rng.random() < 0.7 else [level, value]
    return value


@generator("deep-value-meta")
def gen_deep_value_meta(rng, topic):
    env = base_metric(rng)
    leaf = rng.choice([1, "x", None, 1.5, big_int(rng), [], {}, "é\n"])
    nested = deep(rng, rng.randint(2, 40), leaf)
    where = rng.random()
    if where < 0.1:
        env["metric"]["value"] = nested
    elif where < 0.2:
        env["metric"].setdefault("dimensions", {})["k"] = nested
    else:
        env["metric"]["value_meta"] = nested if isinstance(nested, dict) else {"v": nested}
    return text_writer(rng).bytes(env)


def long_string(rng):
    alphabet = rng.choice(["abcdefghij", "abc é中😀", "a b,c=d\\e\"f"])
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1000, 5000)))


@generator("long-strings")
def gen_long_strings(rng, topic):
    env = base_metric(rng)
    plant_strings(rng, env, lambda: long_string(rng))
    if rng.random() < 0.15:
        env["metric"]["value"] = rng.choice(["1" * rng.randint(1000, 5000),
                                             long_string(rng)])
    return text_writer(rng).bytes(env)


# ---- alarms

def alarm_body(env):
    return env["alarm-transitioned"]


ALARM_REQUIRED = ["alarmId", "metrics", "newState", "oldState",
                  "stateChangeReason", "tenantId", "timestamp", "subAlarms"]
ALARM_STRINGS = ["alarmId", "newState", "oldState", "stateChangeReason",
                 "tenantId", "link", "lifecycleState"]


@generator("alarm-missing-key", topics=(ALARMS,))
def gen_alarm_missing_key(rng, topic):
    env = base_alarm(rng)
    if rng.random() < 0.12:
        env = {"alarm-transitioned-x": alarm_body(env)}
    else:
        for key in pick(rng, ALARM_REQUIRED, rng.choice([1, 1, 2])):
            del alarm_body(env)[key]
    return text_writer(rng).bytes(env)


@generator("alarm-missing-optional", topics=(ALARMS,))
def gen_alarm_missing_optional(rng, topic):
    env = base_alarm(rng)
    body = alarm_body(env)
    for key in pick(rng, ["link", "lifecycleState", "alarmDefinitionId",
                          "alarmName", "severity", "actionsEnabled"],
                    rng.randint(1, 4)):
        del body[key]
    if rng.random() < 0.5:
        body["link"] = rng.choice([None, "", "http://x/"])
    return text_writer(rng).bytes(env)


@generator("alarm-types", topics=(ALARMS,), weight=2)
def gen_alarm_types(rng, topic):
    env = base_alarm(rng)
    if rng.random() < 0.1:
        env["alarm-transitioned"] = rng.choice([None, [], "x", 1, [alarm_body(env)]])
    else:
        body = alarm_body(env)
        for key in pick(rng, ALARM_STRINGS + ["metrics", "subAlarms", "timestamp"],
                        rng.randint(1, 2)):
            body[key] = rng.choice(WRONG_TYPES + [float_literal(rng)])
    return text_writer(rng).bytes(env)


@generator("alarm-numeric-string-timestamp", topics=(ALARMS,), weight=0.6)
def gen_alarm_numeric_string_timestamp(rng, topic):
    env = base_alarm(rng)
    alarm_body(env)["timestamp"] = rng.choice(NUMERIC_STRINGS)
    return text_writer(rng).bytes(env)


@generator("alarm-bigint", topics=(ALARMS,))
def gen_alarm_bigint(rng, topic):
    env = base_alarm(rng)
    body = alarm_body(env)
    where = rng.choice(["dims", "threshold", "values", "timestamp", "tenant", "period"])
    sub = dict(body["subAlarms"][0])
    expr = dict(sub["subAlarmExpression"])
    if where == "dims":
        body["metrics"][0]["dimensions"]["n"] = big_int(rng)
    elif where == "threshold":
        expr["threshold"] = big_int(rng)
    elif where == "values":
        sub["currentValues"] = [big_int(rng), 1.5]
    elif where == "timestamp":
        body["timestamp"] = big_int(rng)
    elif where == "tenant":
        body["tenantId"] = big_int(rng)
    else:
        expr["period"] = big_int(rng)
    sub["subAlarmExpression"] = expr
    body["subAlarms"] = [sub]
    return text_writer(rng).bytes(env)


@generator("alarm-floats", topics=(ALARMS,))
def gen_alarm_floats(rng, topic):
    env = base_alarm(rng)
    body = alarm_body(env)
    lit = Raw(rng.choice(NAN_LITERALS)) if rng.random() < 0.2 else float_literal(rng)
    where = rng.choice(["values", "threshold", "timestamp", "dims", "metrics"])
    sub = dict(body["subAlarms"][0])
    if where == "values":
        sub["currentValues"] = [lit, 2.5, float_literal(rng)]
    elif where == "threshold":
        sub["subAlarmExpression"] = dict(sub["subAlarmExpression"], threshold=lit)
    elif where == "timestamp":
        body["timestamp"] = lit
    elif where == "dims":
        body["metrics"][0]["dimensions"]["f"] = lit
    else:
        body["metrics"] = [{"id": lit, "name": "n", "dimensions": {}}]
    body["subAlarms"] = [sub]
    return text_writer(rng).bytes(env)


def plant_alarm_strings(rng, env, make):
    body = alarm_body(env)
    for place in pick(rng, ["tenantId", "alarmId", "stateChangeReason", "link",
                            "lifecycleState", "newState", "dim-key", "dim-value",
                            "sub-dim"], rng.randint(1, 3)):
        if place == "dim-key":
            body["metrics"][0]["dimensions"][make()] = "v"
        elif place == "dim-value":
            body["metrics"][0]["dimensions"]["k"] = make()
        elif place == "sub-dim":
            sub = dict(body["subAlarms"][0])
            expr = dict(sub["subAlarmExpression"])
            expr["metricDefinition"] = {"name": make(), "dimensions": {make(): make()}}
            sub["subAlarmExpression"] = expr
            body["subAlarms"] = [sub]
        else:
            body[place] = make()


@generator("unicode", topics=(ALARMS,))
def gen_unicode_alarm(rng, topic):
    env = base_alarm(rng)
    lone = rng.random() < 0.3
    plant_alarm_strings(rng, env, lambda: mixed_string(rng, UNICODE_PIECES, lone))
    writer = JsonText(rng, escape=rng.choice(["min", "ascii", "mixed"]),
                      spacing=rng.choice(["compact", "spaced"]))
    return writer.bytes(env)


@generator("escapes", topics=(ALARMS,))
def gen_escapes_alarm(rng, topic):
    env = base_alarm(rng)
    pieces = ESCAPE_PIECES + LINE_PIECES
    plant_alarm_strings(rng, env, lambda: mixed_string(rng, pieces))
    return JsonText(rng, escape="mixed", spacing="compact").bytes(env)


@generator("duplicate-keys", topics=(ALARMS,))
def gen_duplicate_keys_alarm(rng, topic):
    env = base_alarm(rng)
    body = alarm_body(env)
    if rng.random() < 0.2:
        other = base_alarm(rng)
        values = [env["alarm-transitioned"], other["alarm-transitioned"]]
        if rng.random() < 0.4:
            values[0] = None
            rng.shuffle(values)
        env = dup_object(rng, env, "alarm-transitioned", values)
    elif rng.random() < 0.3:
        dims = body["metrics"][0]["dimensions"]
        key = rng.choice(list(dims))
        body["metrics"][0]["dimensions"] = dup_object(rng, dims, key, ["a", "b"])
    else:
        key = rng.choice(ALARM_REQUIRED + ["link", "lifecycleState"])
        values = [body.get(key), rng.choice(["x", None, 1, [], "OK"])]
        rng.shuffle(values)
        env["alarm-transitioned"] = dup_object(rng, body, key, values)
    return text_writer(rng).bytes(env)


@generator("alarm-sub-alarms", topics=(ALARMS,), weight=1.5)
def gen_alarm_sub_alarms(rng, topic):
    # The original renames four keys by replacing text in the dumped JSON.
    env = base_alarm(rng)
    body = alarm_body(env)
    kind = rng.randrange(6)
    if kind == 0:
        body["subAlarms"] = rng.choice([[], None, {}, "", 0, False, [{}], "[]"])
    elif kind == 1:
        # The renamed names as keys elsewhere, and as text inside values.
        sub = dict(body["subAlarms"][0])
        definition = {"name": '"currentValues": x',
                      "dimensions": {"currentValues": "subAlarmState", "subAlarmState": 1}}
        sub["subAlarmExpression"] = dict(sub["subAlarmExpression"],
                                         metricDefinition=definition)
        body["subAlarms"] = [sub]
    elif kind == 2:
        body["subAlarms"] = [{"currentValues": [], "subAlarmExpression": None,
                              "subAlarmState": None, "metricDefinition": "x",
                              "currentValues ": 1, "CurrentValues": 2}]
    elif kind == 3:
        body["subAlarms"] = [body["subAlarms"][0]] * rng.randint(3, 12)
    elif kind == 4:
        body["subAlarms"] = {"subAlarmExpression": {"metricDefinition": {}},
                             "currentValues": [1]}
    else:
        body["metrics"] = rng.choice([[], None, {}, "", [None], [{"dimensions": None}],
                                      [{"name": "a", "dimensions": {"b": "c"}}] * 4])
    return text_writer(rng).bytes(env)


@generator("alarm-long-deep", topics=(ALARMS,))
def gen_alarm_long_deep(rng, topic):
    env = base_alarm(rng)
    body = alarm_body(env)
    if rng.random() < 0.5:
        plant_alarm_strings(rng, env, lambda: long_string(rng))
    else:
        body["metrics"] = [deep(rng, rng.randint(2, 40), "leaf")]
        if rng.random() < 0.5:
            body["subAlarms"] = [deep(rng, rng.randint(2, 40), 1.5)]
    return text_writer(rng).bytes(env)


# ---- both topics: the wire format

MARK = "@@MARK@@"


def marked_text(rng, topic, number=False):
    """A plain message's JSON text with MARK in a string (or number) place."""
    env = base_message(rng, topic)
    value = Raw(MARK) if number else MARK
    if topic == METRICS:
        where = rng.choice(["name", "dim", "tenant"] if not number else
                           ["value", "timestamp"])
        if where in ("value", "timestamp", "name"):
            env["metric"][where] = value
        elif where == "dim":
            env["metric"].setdefault("dimensions", {})["k"] = value
        else:
            env["meta"]["tenantId"] = value
    else:
        body = alarm_body(env)
        where = rng.choice(["stateChangeReason", "alarmId", "tenantId"]
                           if not number else ["timestamp"])
        body[where] = value
    return text_writer(rng).text(env)


@generator("bom-whitespace", topics=BOTH)
def gen_bom_whitespace(rng, topic):
    bom = b"\xef\xbb\xbf"
    kind = rng.randrange(9)
    if kind in (0, 1):
        writer = JsonText(rng, escape="min", spacing="noisy")
        text = writer.bytes(base_message(rng, topic))
    else:
        text = text_writer(rng).bytes(base_message(rng, topic))
    ws = rng.choice([b" ", b"\n", b"\r\n", b"\t", b" \t\n\r "])
    if kind == 0:
        return text
    if kind == 1:
        return bom + ws + text + ws
    if kind == 2:
        return bom + text
    if kind == 3:
        return ws + bom + text
    if kind == 4:
        return bom + bom + text
    if kind == 5:
        return text + bom
    if kind == 6:
        # Not JSON whitespace: form feed, vertical tab, NBSP, U+3000, BOM.
        odd = rng.choice([b"\x0c", b"\x0b", "\u00a0".encode(), "\u3000".encode(), bom])
        i = text.index(b":")
        return text[:i] + odd + text[i:]
    if kind == 7:
        return ws + text + ws
    return bom + text.replace(b",", b" ,\r\n ")


@generator("invalid-json", topics=BOTH, weight=1.5)
def gen_invalid_json(rng, topic):
    kind = rng.randrange(12)
    if kind == 0:
        text = marked_text(rng, topic).replace(MARK, "x")
        return text[:rng.randrange(0, len(text))].encode()
    if kind == 1:
        text = marked_text(rng, topic).replace(MARK, "x")
        return (text + rng.choice(["x", " x", "}", "]", ",", "{}", " 1", "\x00",
                                   "//c", "\n{}", ";", "\"\""])).encode()
    if kind == 2:
        writer = JsonText(rng, trailing_commas=True)
        text = writer.text(base_message(rng, topic))
        if not writer.trailing_commas_written:
            text = text[:-1] + ",}"
        return text.encode()
    if kind == 3:
        text = marked_text(rng, topic).replace(MARK, "x")
        if rng.random() < 0.5:
            return text.replace('"', "'").encode()
        key = text[1:text.index('"', 2) + 1]
        return text.replace(key, "'" + key[1:-1] + "'", 1).encode()
    if kind == 4:
        # A raw control character or a bad escape inside a string.
        bad = rng.choice(["\x01", "\n", "\t", "\x1f", "\x00", "\\x41", "\\u12",
                          "\\u12G4", "\\'", "\\U0041", "\\a", "\\0", "\\ "])
        return marked_text(rng, topic).replace(MARK, "a" + bad + "b").encode()
    if kind == 5:
        bad = rng.choice(["01", "1.", ".5", "+1", "-", "1e", "1e+", "0x10", "--1",
                          "1.5.5", "nan", "inf", "-NaN", "+Infinity", "True",
                          "None", "undefined", "NULL", "infinity", "1 2"])
        return marked_text(rng, topic, number=True).replace(MARK, bad).encode()
    if kind == 6:
        return rng.choice([b"", b" ", b"\n", b"\x00", b"{", b"}", b"{}}", b"{{}}",
                           b"\"", b"[", b"null null"])
    if kind == 7:
        text = marked_text(rng, topic).replace(MARK, "x")
        return ("/* c */" + text if rng.random() < 0.5 else text.replace(
            '":', '" // c\n:', 1)).encode()
    if kind in (8, 9, 10):
        # Broken punctuation around a string value: invalid in any context.
        bad = rng.choice(['"x",,', '"x" "y"', '"x";', '"x":', '"x"]', '"x" = "y"',
                          '"x', 'x"', "'x'", '"x"}}', '"x" + "y"', "x"])
        return marked_text(rng, topic).replace('"%s"' % MARK, bad).encode()
    text = marked_text(rng, topic).replace(MARK, "x")
    return (text[:-1] if rng.random() < 0.5 else text + text).encode()


@generator("invalid-utf8", topics=BOTH)
def gen_invalid_utf8(rng, topic):
    bad = rng.choice([b"\xff", b"\xfe", b"\xc3", b"\xc3(", b"\xc0\xaf",
                      b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
                      b"\xed\xa0\xbd\xed\xb8\x80", b"\xf4\x90\x80\x80",
                      b"\xf0\x9f\x98", b"\xe9", b"\x80", b"\xf8\x88\x80\x80\x80"])
    kind = rng.randrange(4)
    if kind == 3:
        # The whole message in another encoding.
        text = marked_text(rng, topic).replace(MARK, "\u00e4")
        return text.encode(rng.choice(["utf-16", "utf-16-le", "latin-1"]))
    text = marked_text(rng, topic).encode()
    if kind == 0:
        return text.replace(MARK.encode(), b"a" + bad + b"b")
    if kind == 1:
        return bad + text.replace(MARK.encode(), b"x")
    return text.replace(MARK.encode(), b"x") + bad


@generator("non-object-top", topics=BOTH)
def gen_non_object_top(rng, topic):
    message = base_message(rng, topic)
    writer = text_writer(rng)
    return writer.bytes(rng.choice([
        [], [message], "string", writer.text(message), 42, Raw("-1.5"), None,
        True, False, [None], {}, Raw("1e309"), {"": message}]))


@generator("tombstone", topics=BOTH, weight=0.3)
def gen_tombstone(rng, topic):
    return None


# --------------------------------------------------------------------------
# Drawing messages

def choose(rng):
    topic = METRICS if rng.random() < METRICS_SHARE else ALARMS
    if rng.random() < VALID_SHARE:
        return topic, VALID[topic], gen_valid
    classes = GENERATORS[topic]
    name, _, fn = rng.choices(classes, weights=[w for _, w, _ in classes])[0]
    return topic, name, fn


def generate(seed, count):
    rng = random.Random(seed)
    for _ in range(count):
        topic, name, fn = choose(rng)
        value = fn(rng, topic)
        assert value is None or isinstance(value, bytes), (name, type(value))
        yield topic, name, value


# --------------------------------------------------------------------------
# Rendering with the original

class KafkaMessage:
    """What the original reads: confluent_kafka.Message.value()."""

    def __init__(self, value):
        self._value = value

    def value(self):
        return self._value


def load_original():
    from monasca_persister.repositories.influxdb.alarm_state_history_repository \
        import AlarmStateHistInfluxdbRepository
    from monasca_persister.repositories.influxdb.metrics_repository \
        import MetricInfluxdbRepository
    return {
        METRICS: MetricInfluxdbRepository.process_message,
        ALARMS: lambda msg: AlarmStateHistInfluxdbRepository.process_message(None, msg),
    }


def describe(exc):
    text = "%s: %s" % (type(exc).__name__, exc)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def render(process, value):
    """(line, tenant) as the original would write them, or an error text."""
    try:
        line, tenant_id = process(KafkaMessage(value))
    except Exception as exc:  # what the original's persister loop catches
        return None, None, describe(exc)
    try:
        line.encode("utf-8")  # influxdb's write(): '\n'.join(lines).encode('utf-8')
    except UnicodeEncodeError as exc:
        return None, None, describe(exc)
    tenant = str(tenant_id)
    tenant.encode("utf-8")  # part of the line, so it encodes too
    return line, tenant, None


def main(argv):
    if len(argv) != 4:
        sys.exit("usage: persister_oracle.py SEED COUNT OUT.jsonl")
    seed, count, out_path = int(argv[1]), int(argv[2]), argv[3]
    if count < 1:
        sys.exit("persister_oracle.py: COUNT must be at least 1")
    sys.set_int_max_str_digits(INT_MAX_STR_DIGITS)
    processors = load_original()

    summary = {}
    with open(out_path, "w", encoding="ascii") as out:
        for topic, name, value in generate(seed, count):
            line, tenant, error = render(processors[topic], value)
            record = {"topic": topic,
                      "value": None if value is None else base64.b64encode(value).decode(),
                      "class": name}
            if error is None:
                record["line"] = line
                record["tenant"] = tenant
            else:
                record["error"] = error
            out.write(json.dumps(record, ensure_ascii=True) + "\n")
            counts = summary.setdefault((topic, name), [0, 0])
            counts[0 if error is None else 1] += 1

    names = {topic: [VALID[topic]] + [name for name, _, _ in GENERATORS[topic]]
             for topic in (METRICS, ALARMS)}
    width = max(len("%s %s" % (topic, name)) for topic in names for name in names[topic])
    lines = errors = 0
    print("persister_oracle.py: seed %d, %d messages" % (seed, count), file=sys.stderr)
    print("  %-*s %6s %6s" % (width, "topic class", "lines", "errors"), file=sys.stderr)
    for topic in (METRICS, ALARMS):
        for name in names[topic]:
            ok, bad = summary.get((topic, name), (0, 0))
            lines, errors = lines + ok, errors + bad
            print("  %-*s %6d %6d" % (width, "%s %s" % (topic, name), ok, bad),
                  file=sys.stderr)
    print("  %-*s %6d %6d" % (width, "total", lines, errors), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
