#!/usr/bin/env python3
"""Differential oracle: the ORIGINAL monasca-notification 9.0.0 on GENERATED alarm transitions.

Our own code (not part of monasca-notification). Run it with the venv python of
scripts/peers/notification_oracle.sh, which creates that venv and calls:

    notification_differential.py SEED COUNT OUT.jsonl

1. Generates COUNT Kafka message values (raw bytes) from SEED. Message i draws from its own
   random.Random('SEED/i') and depends on SEED and i only (not on COUNT or PYTHONHASHSEED: a
   shorter run is a prefix of a longer one). Messages 0..N-1 take the N generator classes in
   CLASSES order, later ones a class drawn by weight; the k-th message of a class takes the k-th
   of that class's listed shapes (Slack URLs, canned answers, timestamp kinds, broken-JSON kinds,
   ...) until each was used once, random ones after. The JSON text is written by hand (key order,
   duplicate keys, number spellings, escapes and white space are chosen, not left to a
   serializer), mostly well-formed `{"alarm-transitioned": {...}}` transitions as monasca-thresh publishes them, with
   unusual content, plus broken ones; `now` is config.json's, so TTL decisions are fixed.
2. Runs each through the original exactly as notification_expected.py does (that module is
   imported: its interceptors, fake database answering every definition with all rows of
   methods.json -- none for the definition without actions --, canned HTTP answers, fake SMTP and
   Jira), one new engine per message.
3. Writes one JSON object a line to OUT.jsonl (ASCII only, so any line splitter works):

     {"class": generator class, "case": "<class>-<index>", "index": i, "seed": SEED,
      "description": what the generator did,
      "input": {"value_b64": the message value, "offset": Kafka offset given to the engine},
      "variant": null or what differed from methods.json / config.json (below),
      "now", "processor", "sql", "exceptions", "crash", "log_warnings_errors", "committed",
      "kafka_out", "notifications", ["dropped_not_enabled"]}

   From "now" on the keys and their meaning are those of tests/fixtures/notification/expected/
   <case>.json (see the README there). Recorded values that plain JSON parsers reject are
   wrapped: a string holding a lone surrogate (U+D800..U+DFFF) becomes
   {"wtf8_b64": base64 of its WTF-8 bytes} (an object key: "wtf8_b64:<base64>"), an integer
   outside [-2^63, 2^64) becomes {"big_int": "<digits>"}, a non-finite float {"float": "inf"}
   (or "-inf", "nan"; e.g. processor.age_seconds of a timestamp 1e400, which simplejson parses
   as inf). Such values only appear where the original kept a parsed value as is (SQL
   arguments, Jira fields handed to the fake jira.JIRA, log lines, age_seconds); HTTP bodies and
   Kafka values are text already (a Kafka value may hold Infinity: json.dumps writes it). Python file paths in
   crash tracebacks are shown relative to site-packages.

   Variants ("variant" not null), for the Slack plugin:
     {"kind": "method-address", "method_id": ID, "address": URL}
         the methods.json row ID has address URL instead (blank query parameters and other
         query/path shapes; the recorded HTTP call shows the URL requests really sent);
     {"kind": "slack-responses", "hosts": [...], "json_post": R, "form_post": R}
         requests to those hosts are answered with R (status, content_type -- null: no
         Content-Type header --, body) depending on the request's Content-Type
         (application/json: the first post; otherwise the form-data fallback); every other
         request gets config.json's answer;
     {"kind": "slack-raw-data-cache", "cached_urls": [...]}
         the plugin's process-wide cache of URLs that took form data already holds these
         (as after an earlier fallback), so only the form post is made; the line also gets
         "slack_raw_data_url_cache_after".

A per-class summary goes to stderr. When the run looks broken (fewer than half of the messages
reached a plugin), OUT.jsonl is removed and the exit status is 1.
"""

import base64
import json
import math
import os
import random
import sys
import time

ARGV = list(sys.argv)  # notification_expected replaces sys.argv for oslo.config
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import notification_expected as nx  # noqa: E402  (installs every interceptor)

NOW = nx.NOW
NOW_MS = int(NOW * 1000)
TTL = int(nx.CONFIG['oslo_config']['alarm_processor']['ttl'])
NO_ACTIONS = nx.CONFIG['alarm_definitions_without_actions'][0]
SLACK_HOSTS = ['hooks.slack.example', 'slack.example']
SLACK_API_ID = '0a000006-0000-4000-8000-000000000006'
SLACK_HOOK_ID = '0a000005-0000-4000-8000-000000000005'
assert {m['id'] for m in nx.METHODS} >= {SLACK_API_ID, SLACK_HOOK_ID}


# =========================================================================== JSON text writer
class Raw(object):
    """Text written as is (numbers in a chosen spelling, literals, broken JSON)."""
    __slots__ = ('text',)

    def __init__(self, text):
        self.text = text


class S(object):
    """A string with its own escaping style ('raw', 'ascii', 'mixed')."""
    __slots__ = ('s', 'style')

    def __init__(self, s, style):
        self.s = s
        self.style = style


class Pairs(object):
    """An object as an ordered list of [key, value] (keys may repeat)."""
    __slots__ = ('pairs',)

    def __init__(self, pairs):
        self.pairs = [list(p) for p in pairs]

    def keys(self):
        return [k for k, _ in self.pairs]

    def get(self, key, default=None):
        for k, v in self.pairs:
            if k == key:
                return v
        return default

    def set(self, key, value):
        for p in self.pairs:
            if p[0] == key:
                p[1] = value
                return
        self.pairs.append([key, value])

    def remove(self, key):
        self.pairs = [p for p in self.pairs if p[0] != key]


SHORT_ESCAPES = {'"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f'}


def _u(code, rng, style):
    upper = style == 'mixed' and rng.random() < 0.3
    return ('\\u%04X' if upper else '\\u%04x') % code


def emit_str(s, style, rng):
    out = ['"']
    for ch in s:
        o = ord(ch)
        mixed = style == 'mixed'
        if ch in SHORT_ESCAPES and (o >= 0x20 or not mixed or rng.random() < 0.7):
            out.append(SHORT_ESCAPES[ch] if not (mixed and rng.random() < 0.15) else _u(o, rng, style))
        elif o < 0x20 or 0xD800 <= o <= 0xDFFF:
            out.append(_u(o, rng, style))
        elif o < 0x7F:
            if mixed and ch == '/' and rng.random() < 0.5:
                out.append('\\/')
            elif mixed and rng.random() < 0.03:
                out.append(_u(o, rng, style))
            else:
                out.append(ch)
        elif style == 'raw' or (mixed and rng.random() < 0.5):
            out.append(ch)
        elif o > 0xFFFF:
            v = o - 0x10000
            out.append(_u(0xD800 + (v >> 10), rng, style) + _u(0xDC00 + (v & 0x3FF), rng, style))
        else:
            out.append(_u(o, rng, style))
    out.append('"')
    return ''.join(out)


class Writer(object):
    def __init__(self, rng, layout, style):
        self.rng = rng
        self.layout = layout
        self.style = style

    def ws(self, kind, depth):
        lay = self.layout
        if lay == 'compact':
            return ''
        if lay == 'spaced':
            return ' ' if kind in ('after_comma', 'after_colon') else ''
        if lay == 'pretty':
            if kind in ('after_open', 'after_comma'):
                return '\n' + '  ' * (depth + 1)
            if kind == 'before_close':
                return '\n' + '  ' * depth
            return ' ' if kind == 'after_colon' else ''
        return self.rng.choice(['', '', '', ' ', '  ', '\t', '\n', '\r\n', ' \n\t'])

    def write(self, v, depth=0):
        if isinstance(v, Raw):
            return v.text
        if isinstance(v, S):
            return emit_str(v.s, v.style, self.rng)
        if isinstance(v, str):
            return emit_str(v, self.style, self.rng)
        if v is True:
            return 'true'
        if v is False:
            return 'false'
        if v is None:
            return 'null'
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, (dict, Pairs)):
            items = v.pairs if isinstance(v, Pairs) else list(v.items())
            if not items:
                return '{}'
            parts = []
            for k, x in items:
                parts.append(self.write(k, depth + 1) + self.ws('before_colon', depth) + ':'
                             + self.ws('after_colon', depth) + self.write(x, depth + 1))
            return ('{' + self.ws('after_open', depth)
                    + (self.ws('before_comma', depth) + ',' + self.ws('after_comma', depth)).join(parts)
                    + self.ws('before_close', depth) + '}')
        if isinstance(v, list):
            if not v:
                return '[]'
            parts = [self.write(x, depth + 1) for x in v]
            return ('[' + self.ws('after_open', depth)
                    + (self.ws('before_comma', depth) + ',' + self.ws('after_comma', depth)).join(parts)
                    + self.ws('before_close', depth) + ']')
        raise TypeError(repr(v))


def to_bytes(doc, rng, layout=None, style=None):
    layout = layout or rng.choices(['compact', 'spaced', 'pretty', 'random'], [70, 14, 8, 8])[0]
    style = style or rng.choices(['raw', 'ascii', 'mixed'], [60, 20, 20])[0]
    w = Writer(rng, layout, style)
    text = w.write(doc)
    if layout == 'random' and rng.random() < 0.5:
        text = rng.choice([' ', '\n', '\t', '\r\n']) + text + rng.choice(['', ' ', '\n', '\r\n'])
    return text.encode('utf-8'), layout, style


# =========================================================================== content pools
NAMES = ['High CPU usage', 'Disk almost full', 'Host unreachable', 'Memory pressure', 'Swap in use',
         'HTTP 5xx rate', 'Kafka consumer lag', 'NTP offset', 'RabbitMQ queue depth', 'Process down',
         'API latency p99', 'Ceph OSD down', 'Load average', 'Inode usage']
DESCRIPTIONS = ['CPU idle below 10% for 3 minutes', 'Root partition above 90%', 'Ping check failed',
                'Raised when the 5 minute average exceeds the threshold', '', 'See runbook',
                'Alarm when more than 5% of requests fail']
METRIC_NAMES = ['cpu.idle_perc', 'disk.space_used_perc', 'host_alive_status', 'mem.usable_perc',
                'http_status', 'kafka.consumer_lag', 'ntp.offset', 'process.pid_count', 'load.avg_5_min',
                'rabbitmq.queue.messages', 'ceph.osd.up', 'disk.inode_used_perc']
HOSTS = ['compute-01', 'compute-02', 'compute-03', 'mon-agent-01', 'db-07.example.org', '10.0.0.5',
         '::1', 'CONTROLLER-A', 'storage_1']
TARGETS = ['db-07.example.org', 'www.example.com', '192.0.2.10', 'router-1']
DIM_KEYS = ['service', 'component', 'mount_point', 'device', 'url', 'process_name', 'region', 'zone',
            'cluster', 'test_type', 'observer_host', 'port']
DIM_VALUES = ['monitoring', 'nova', '/', '/var/log', 'sda1', 'http://127.0.0.1:8070/healthcheck',
              'mysqld', 'RegionOne', 'az-1', 'ping', '8080', 'kafka', 'ceph']
STATES = ['OK', 'ALARM', 'UNDETERMINED']
SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']
LIFECYCLE = [None, None, None, 'OPEN', 'ACKNOWLEDGED', 'RESOLVED']
LINKS = [None, None, None, 'http://runbooks.example.org/host-down?a=1&b=2',
         'https://wiki.example/Alarm#Section', 'http://grafana.example:3000/d/abc?orgId=1&from=now-1h']
FUNCTIONS = ['AVG', 'MAX', 'MIN', 'SUM', 'COUNT', 'LAST']
OPERATORS = {'LT': '<', 'LTE': '<=', 'GT': '>', 'GTE': '>='}

UNICODE_BITS = [
    'é', 'Ünïcødé', 'naïve café', '日本語のアラーム', '警报', 'Ελληνικά ΟΔΟΣ', 'ΣΑΣ', 'İstanbul', 'İI',
    'Straße', 'ẞ', 'ǅ', 'Kelvin K', 'Ⅻ', 'ﬁle', '🔥', '🚀 deploy', '👩\u200d💻', '🇩🇪', 'e\u0301',
    '\u2028', '\u2029', '\u0085', '\u00a0', 'עברית', 'مرحبا', '\ufeff', '\uffff', '\U0010ffff',
    '\U0001d11e', 'Ω≈ç√∫', '\u200b', 'ǰ', 'ŉ', 'ΐ', 'ﬃ', 'Ａ全角', '\x7f', '\x80', '\x9f',
]
ESCAPE_BITS = [
    '"quoted"', 'back\\slash', 'C:\\temp\\new', 'line1\nline2', 'tab\there', 'cr\rlf', 'crlf\r\n',
    'nul\x00byte', '\x01', '\x1f', '\b\f', '/slash/', '</script>', "'single'", '{code}', '{0} {} %s %d',
    '%(name)s', '\\u0041 literal', '\\"', '\x0b\x0c\x1c\x1d\x1e', '\\n', '"', '\\', '&amp;', '=?utf-8?q?x?=',
]
ASCII_WORDS = ['cpu', 'disk', 'alarm', 'threshold', 'exceeded', 'host', 'value', 'for', 'the', 'rate', 'OK',
               'minutes', 'errors', 'queue', 'node']

SURROGATES = ['\ud800', '\udbff', '\udc00', '\udfff', '\udc80', '\ude00\ud83d', '\ud83dA', '\udfff\udfff']

# number spellings (JSON text) for dimension values, currentValues, ids, ...
NUMBERS = [
    '0', '-0', '1', '-1', '42', '9223372036854775807', '9223372036854775808', '-9223372036854775808',
    '-9223372036854775809', '18446744073709551615', '18446744073709551616',
    '340282366920938463463374607431768211456', '-' + '9' * 40, '1' + '0' * 100,
    '0.1', '0.30000000000000004', '1.0000000000000002', '3.141592653589793', '12345678901234567',
    '1234567890123456.7', '0.1234567890123456789', '1e308', '1E308', '1.7976931348623157e308',
    '-1.7976931348623157E+308', '5e-324', '4.9e-324', '2.2250738585072014e-308', '1e-400', '-0.0', '0.0',
    '-0e0', '0e0', '1e0', '1E+0', '1e16', '1e15', '1e-5', '1e-4', '0.0001', '0.00001', '123e-2', '1.5e+300',
    '10.50', '100.0', '1e22', '9007199254740993', '9007199254740993.0', '2.5e-5', '1.0e+2', '-1e-7',
    '1000000000000000.0', '10000000000000000.0', '99.99999999999999999', '6.02214076e23',
]
HUGE_INT = '1' + '7' * 4299          # 4300 digits: the most Python's int() accepts
# beyond the double range: simplejson parses them as +-inf (and 1e-400 as 0.0), then refuses to
# write them (allow_nan=False in simplejson 4), while json.dumps (to_json) writes Infinity
OVERFLOWS = ['1e400', '-1e400', '1.8e308', '-2E+308']


def cover(rng, k, options):
    """The k-th option for the k-th message of a class while k < len(options), then a random one:
    every option shows up once a class has had as many messages as it has options."""
    return options[k] if k < len(options) else rng.choice(options)


def hexid(rng):
    return '%032x' % rng.getrandbits(128)


def uuid(rng):
    b = rng.getrandbits(128)
    h = '%032x' % b
    return '%s-%s-4%s-%s-%s' % (h[:8], h[8:12], h[13:16], h[16:20], h[20:])


def pick(rng, pool, k_lo=1, k_hi=1, sep=' '):
    return sep.join(rng.choice(pool) for _ in range(rng.randint(k_lo, k_hi)))


def unicode_text(rng, lo=1, hi=4):
    parts = []
    for _ in range(rng.randint(lo, hi)):
        parts.append(rng.choice(UNICODE_BITS) if rng.random() < 0.6 else rng.choice(ASCII_WORDS))
    return rng.choice([' ', '', '-', ' ']).join(parts)


def escape_text(rng, lo=1, hi=4):
    parts = []
    for _ in range(rng.randint(lo, hi)):
        parts.append(rng.choice(ESCAPE_BITS) if rng.random() < 0.6 else rng.choice(ASCII_WORDS))
    return ' '.join(parts)


def long_text(rng, lo, hi):
    n = rng.randint(lo, hi)
    pool = ASCII_WORDS * 4 + UNICODE_BITS + ESCAPE_BITS[:6]
    out = []
    size = 0
    while size < n:
        w = rng.choice(pool)
        out.append(w)
        size += len(w) + 1
    return ' '.join(out)[:n]


def java_double(x):
    return repr(float(x))


# =========================================================================== a thresh-like alarm
def gen_dimensions(rng, host=True, target=None, extra=None, keyfn=None, valfn=None):
    dims = []
    if host:
        dims.append(['hostname', rng.choice(HOSTS)])
    if target:
        dims.insert(rng.randint(0, len(dims)), ['target_host', rng.choice(TARGETS)])
    n = rng.randint(0, 3) if extra is None else extra
    used = {'hostname', 'target_host'}
    for _ in range(n):
        k = keyfn(rng) if keyfn else rng.choice(DIM_KEYS)
        if k in used:
            continue
        used.add(k)
        dims.insert(rng.randint(0, len(dims)), [k, valfn(rng) if valfn else rng.choice(DIM_VALUES)])
    return Pairs(dims)


def gen_metric(rng, name=None, dims=None):
    m = Pairs([['id', None], ['name', name or rng.choice(METRIC_NAMES)],
               ['dimensions', dims if dims is not None else gen_dimensions(rng)]])
    return m


def gen_metrics(rng, n=None, **kw):
    if n is None:
        n = rng.choices([0, 1, 2, 3, 4, 5], [4, 50, 20, 12, 8, 6])[0]
    host_mode = rng.choices(['one', 'distinct', 'none', 'mixed'], [55, 20, 10, 15])[0]
    host = rng.choice(HOSTS)
    out = []
    for i in range(n):
        dims = gen_dimensions(rng, host=host_mode != 'none' and (host_mode != 'mixed' or rng.random() < 0.5),
                              target=rng.random() < 0.2, **kw)
        if host_mode == 'one' and dims.get('hostname') is not None:
            dims.set('hostname', host)
        out.append(gen_metric(rng, dims=dims))
    return out


def gen_values(rng, k=None):
    k = rng.randint(1, 3) if k is None else k
    return [round(rng.uniform(0, 100), rng.choice([0, 1, 2, 3])) for _ in range(k)]


def gen_subalarms(rng, metrics, state):
    subs = []
    for m in (metrics[:rng.randint(1, 2)] if metrics else [gen_metric(rng)]):
        op = rng.choice(list(OPERATORS))
        dims = m.get('dimensions') if isinstance(m, Pairs) else None
        subs.append(Pairs([
            ['subAlarmExpression', Pairs([
                ['function', rng.choice(FUNCTIONS)],
                ['metricDefinition', Pairs([['name', m.get('name') if isinstance(m, Pairs) else 'x'],
                                            ['dimensions', dims if dims is not None else {}]])],
                ['operator', op], ['threshold', float(rng.choice([0, 5, 10, 80, 90, 95]))],
                ['period', 60], ['periods', rng.choice([1, 3, 5])]])],
            ['subAlarmState', state],
            ['currentValues', gen_values(rng)]]))
    return subs


def gen_reason(rng, metrics, new_state):
    name = rng.choice(METRIC_NAMES)
    vals = ', '.join(java_double(v) for v in gen_values(rng))
    op = rng.choice(list(OPERATORS.values()))
    if new_state == 'OK':
        return ('The alarm threshold(s) have not been exceeded for the sub-alarms: avg(%s) %s 10.0 with the '
                'values: [%s]' % (name, op, vals))
    if new_state == 'UNDETERMINED':
        return 'No data was present for the sub-alarms: count(%s) %s 1.0 times 3' % (name, op)
    return ('Thresholds were exceeded for the sub-alarms: avg(%s{hostname=%s}, 60) %s 10.0 times 3 with the '
            'values: [%s]' % (name, rng.choice(HOSTS), op, vals))


def base_alarm(rng, metrics=None):
    old, new = rng.sample(STATES, 2)
    if metrics is None:
        metrics = gen_metrics(rng)
    ts = NOW_MS - rng.choice([rng.randint(0, 600000), rng.randint(0, TTL * 1000)])
    return Pairs([
        ['tenantId', hexid(rng)],
        ['alarmId', uuid(rng)],
        ['alarmDefinitionId', uuid(rng)],
        ['alarmName', rng.choice(NAMES)],
        ['alarmDescription', rng.choice(DESCRIPTIONS)],
        ['metrics', metrics],
        ['oldState', old],
        ['newState', new],
        ['actionsEnabled', True],
        ['stateChangeReason', gen_reason(rng, metrics, new)],
        ['severity', rng.choice(SEVERITIES)],
        ['link', rng.choice(LINKS)],
        ['lifecycleState', rng.choice(LIFECYCLE)],
        ['subAlarms', gen_subalarms(rng, metrics, new)],
        ['timestamp', ts],
    ])


def wrap(alarm):
    return Pairs([['alarm-transitioned', alarm]])


def all_metric_dims(alarm):
    ms = alarm.get('metrics')
    return [m.get('dimensions') for m in (ms if isinstance(ms, list) else [])
            if isinstance(m, Pairs) and isinstance(m.get('dimensions'), Pairs)]


# =========================================================================== generator classes
# Each returns (value bytes, description, variant or None).
def c_thresh_like(rng, k):
    a = base_alarm(rng)
    b, lay, sty = to_bytes(wrap(a), rng, layout=rng.choice(['compact', 'compact', 'spaced']), style='raw')
    return b, 'thresh-like alarm, %d metric(s), %s' % (len(a.get('metrics')), lay), None


TEXT_FIELDS = ['alarmName', 'alarmDescription', 'stateChangeReason', 'link', 'lifecycleState', 'tenantId',
               'alarmId', 'severity']


def _texts(rng, a, make, what):
    changed = []
    for f in TEXT_FIELDS:
        if rng.random() < (0.8 if f in ('alarmName', 'alarmDescription', 'stateChangeReason') else 0.25):
            a.set(f, make(rng))
            changed.append(f)
    for dims in all_metric_dims(a):
        for p in dims.pairs:
            r = rng.random()
            if r < 0.35:
                p[1] = make(rng)
                changed.append('dim:' + p[0])
            elif r < 0.45 and p[0] not in ('hostname', 'target_host'):
                p[0] = make(rng)
                changed.append('dim key')
    for m in a.get('metrics'):
        if rng.random() < 0.2:
            m.set('name', make(rng))
            changed.append('metric name')
    return '%s in %s' % (what, ', '.join(sorted(set(changed))) or 'nothing')


def c_unicode_text(rng, k):
    a = base_alarm(rng)
    desc = _texts(rng, a, unicode_text, 'non-ASCII')
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, '%s (%s, %s)' % (desc, sty, lay), None


def c_escapes(rng, k):
    a = base_alarm(rng)
    desc = _texts(rng, a, escape_text, 'escapes')
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, '%s (%s, %s)' % (desc, sty, lay), None


def c_long_text(rng, k):
    a = base_alarm(rng)
    hi = rng.choice([1000, 3000, 8000])
    fields = rng.sample(['alarmName', 'alarmDescription', 'stateChangeReason', 'link', 'dim', 'hostname'],
                        rng.randint(1, 3))
    for f in fields:
        t = long_text(rng, 300, hi)
        if f in ('dim', 'hostname'):
            for dims in all_metric_dims(a)[:1]:
                dims.set('hostname' if f == 'hostname' else 'long_' + rng.choice(DIM_KEYS), t)
        else:
            a.set(f, t)
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'long text (up to %d chars) in %s (%s)' % (hi, ', '.join(fields), sty), None


def rand_number(rng):
    r = rng.random()
    if r < 0.01:
        return Raw(HUGE_INT)
    if r < 0.04:
        return Raw(rng.choice(OVERFLOWS))
    return Raw(rng.choice(NUMBERS))


def c_dimension_numbers(rng, k):
    a = base_alarm(rng, metrics=gen_metrics(rng, n=rng.randint(1, 5)))
    used = []
    for dims in all_metric_dims(a):
        for p in dims.pairs:
            if rng.random() < 0.6:
                p[1] = rand_number(rng)
                used.append('%s=%s' % (p[0], p[1].text[:24]))
        if rng.random() < 0.5:
            k = 'num_' + rng.choice(DIM_KEYS)
            if k not in dims.keys():
                dims.set(k, rand_number(rng))
                used.append('%s=%s' % (k, dims.get(k).text[:24]))
    for m in a.get('metrics'):
        if rng.random() < 0.2:
            m.set('id', rand_number(rng))
            used.append('metric id')
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'number dimension values: ' + '; '.join(used), None


STRUCTURED = [
    Raw('[1, "two"]'), Raw('[]'), Raw('{}'), Raw('{"a": 1}'), Raw('{"nested": {"deep": [true, null, 1.5]}}'),
    Raw('[[["x"]]]'), Raw('true'), Raw('false'), Raw('null'), Raw('[1e308, -0.0, 12345678901234567890123]'),
    Raw('{"": ""}'), Raw('{"k": "\u00e9\\ud83d\\udd25"}'), Raw('["\\u2028", "\\n"]'),
    Raw('{"b": 2, "a": 1, "b": 3}'), Raw('[{"hostname": "inner"}]'), Raw('"[1, \'two\']"'),
    Raw('{"x": [1, {"y": [2, {"z": null}]}]}'), Raw('[true, false]'), Raw('{"q": "\\"", "s": "\\\\"}'),
]
EQUAL_HOSTS = [  # values Python compares equal (1 == True == 1.0; 0 == False == -0.0)
    [Raw('1'), Raw('true'), Raw('1.0')], [Raw('0'), Raw('false'), Raw('-0.0'), Raw('0.0')],
    [Raw('"1"'), Raw('1')], [Raw('[1]'), Raw('[true]'), Raw('[1.0]')], [Raw('{"a": 1}'), Raw('{"a": true}')],
]


def nested(depth, leaf='1'):
    return Raw('[' * depth + leaf + ']' * depth)


def c_dimension_structured(rng, k):
    mode = cover(rng, k, ['values', 'hosts', 'equal-hosts', 'deep']) if k < 4 else \
        rng.choices(['values', 'hosts', 'equal-hosts', 'deep'], [55, 25, 12, 8])[0]
    a = base_alarm(rng, metrics=gen_metrics(rng, n=rng.randint(1, 4)))
    dimss = all_metric_dims(a)
    if mode == 'values':
        for dims in dimss:
            for p in dims.pairs:
                if rng.random() < 0.5:
                    p[1] = rng.choice(STRUCTURED)
            if rng.random() < 0.5:
                dims.set('obj_' + rng.choice(DIM_KEYS), rng.choice(STRUCTURED))
        desc = 'list/dict/bool/null dimension values'
    elif mode == 'hosts':
        for dims in dimss:
            if rng.random() < 0.7:
                dims.set('hostname', rng.choice(STRUCTURED))
            if rng.random() < 0.4:
                dims.set('target_host', rng.choice(STRUCTURED))
        desc = 'list/dict/bool/null hostname and target_host'
    elif mode == 'equal-hosts':
        group = rng.choice(EQUAL_HOSTS)
        a.set('metrics', [gen_metric(rng, dims=Pairs([['hostname', v], ['service', 'x']])) for v in group])
        if rng.random() < 0.5:
            a.get('metrics')[-1].get('dimensions').set('target_host', rng.choice(group))
        desc = 'hostnames that Python compares equal: ' + ', '.join(v.text for v in group)
    else:
        depth = rng.choice([20, 200, 300, 450, 900])
        dimss[0].set('deep', nested(depth, rng.choice(['1', '"x"', '{}'])))
        desc = 'dimension value nested %d deep' % depth
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, desc, None


def c_hosts(rng, k):
    n = rng.randint(0, 5)
    hosts = rng.sample(HOSTS, 3) + ['']
    metrics = []
    for _ in range(n):
        dims = Pairs([[k, rng.choice(DIM_VALUES)] for k in rng.sample(DIM_KEYS, rng.randint(0, 2))])
        if rng.random() < 0.6:
            dims.pairs.insert(rng.randint(0, len(dims.pairs)), ['hostname', rng.choice(hosts)])
        if rng.random() < 0.35:
            dims.pairs.insert(rng.randint(0, len(dims.pairs)), ['target_host', rng.choice(TARGETS + [''])])
        if rng.random() < 0.1:
            dims.set(rng.choice(['Hostname', 'host_name', 'HOSTNAME', 'hostname ']), rng.choice(hosts))
        metrics.append(gen_metric(rng, dims=dims))
    a = base_alarm(rng, metrics=metrics)
    shape = ['%s%s' % ('H' if 'hostname' in d.keys() else '-', 'T' if 'target_host' in d.keys() else '')
             for d in all_metric_dims(a)]
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'hostname/target_host per metric: [%s]' % ' '.join(shape), None


def c_subalarm_values(rng, k):
    a = base_alarm(rng)
    subs = a.get('subAlarms')
    for s in subs:
        s.set('currentValues', [rand_number(rng) for _ in range(rng.randint(0, 5))])
        if rng.random() < 0.5:
            s.get('subAlarmExpression').set('threshold', rand_number(rng))
        if rng.random() < 0.2:
            s.get('subAlarmExpression').set('period', rand_number(rng))
    if rng.random() < 0.2:
        subs.append(Raw(rng.choice(['null', '[]', '{}', '"sub"', '1e-7'])))
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'edge numbers in subAlarms currentValues/threshold', None


ODD_STATES = ['ok', '', 'ALARM ', 'ÄLARM', 'UNDETERMINED\n', 'STATE"QUOTE', '🔥', None, Raw('1'), Raw('[]')]
ODD_SEVERITIES = ['low', '', 'SEVERE', 'crit🔥', 'HIGH\t', None, Raw('3'), Raw('{"level": 1}')]
ODD_LIFECYCLE = ['OPEN', 'ACKNOWLEDGED', 'RESOLVED', 'ouvert é', '', Raw('0'), Raw('{"s": "x"}')]
ODD_LINKS = ['http://h/?q=a b&c=ü', 'javascript:alert(1)', '', 'https://x.example/%41%zz', Raw('[1]')]


def c_states_severity(rng, k):
    a = base_alarm(rng)
    pairs = rng.sample(STATES + ODD_STATES, 2) if rng.random() < 0.5 else rng.sample(STATES, 2)
    a.set('oldState', pairs[0])
    a.set('newState', pairs[1])
    a.set('severity', rng.choice(SEVERITIES + ODD_SEVERITIES))
    a.set('lifecycleState', rng.choice(LIFECYCLE + ODD_LIFECYCLE))
    a.set('link', rng.choice(LINKS + ODD_LINKS))
    b, lay, sty = to_bytes(wrap(a), rng)
    show = lambda v: v.text if isinstance(v, Raw) else json.dumps(v)  # noqa: E731
    return b, 'states %s -> %s, severity %s, lifecycleState %s, link %s' % (
        show(pairs[0]), show(pairs[1]), show(a.get('severity')), show(a.get('lifecycleState')),
        show(a.get('link'))), None


def c_alarm_id_null(rng, k):
    a = base_alarm(rng)
    a.set('alarmId', None)
    nulls = ['alarmId']
    for f in ['alarmName', 'tenantId', 'alarmDescription', 'stateChangeReason', 'link', 'lifecycleState',
              'severity', 'alarmDefinitionId']:
        if rng.random() < 0.15:
            a.set(f, None)
            nulls.append(f)
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'null: ' + ', '.join(nulls), None


ODD_TYPES = [
    ('alarmName', ['42', '1.5', '["a", 1]', '{"n": "x"}', 'true', '-0.0', '12345678901234567890123']),
    ('alarmDescription', ['7', '["d"]', '{"d": 1}', 'false']),
    ('stateChangeReason', ['null', '3', '["r"]', '{"r": "x"}']),
    ('tenantId', ['0', 'null', '["t"]']),
    ('alarmId', ['123', '1e3', '["a"]', '{"id": 1}', 'true', '""']),
    ('alarmDefinitionId', ['5', 'null', '["d"]', '{"d": 1}', '""']),
    ('metrics', ['{}', '{"hostname": "h"}', '"metrics"', '42', 'null', '[null]', '["cpu"]', '[5]', '[[]]',
                 '[{}]', '[{"name": "n"}]', '[{"dimensions": {"hostname": "h"}}]']),
    ('metric.dimensions', ['null', '[]', '"hostname"', '5', '[["hostname", "h"]]']),
    ('metric.name', ['null', '7', '["n"]', '{"n": 1}']),
    ('subAlarms', ['null', '"s"', '3', '{}']),
    ('link', ['1', '{"href": "x"}']),
    ('lifecycleState', ['2', '[]']),
]


def c_odd_types(rng, k):
    a = base_alarm(rng, metrics=gen_metrics(rng, n=rng.randint(1, 3)))
    done = []
    chosen = [ODD_TYPES[k]] if k < len(ODD_TYPES) else rng.sample(ODD_TYPES, rng.randint(1, 2))
    for field, options in chosen:
        v = Raw(rng.choice(options))
        if field.startswith('metric.'):
            ms = a.get('metrics')
            if not (isinstance(ms, list) and ms and isinstance(ms[0], Pairs)):
                continue
            ms[rng.randrange(len(ms))].set(field.split('.')[1], v)
        else:
            a.set(field, v)
        done.append('%s=%s' % (field, v.text))
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'wrong JSON types: ' + ', '.join(done), None


def c_lone_surrogates(rng, k):
    a = base_alarm(rng, metrics=gen_metrics(rng, n=rng.randint(1, 3)))
    where = []

    def spoil(s):
        s = s if isinstance(s, str) else 'x'
        i = rng.randint(0, len(s))
        return s[:i] + rng.choice(SURROGATES) + s[i:]

    for f in ['alarmName', 'alarmDescription', 'stateChangeReason', 'alarmId', 'tenantId', 'link',
              'lifecycleState', 'newState', 'severity', 'alarmDefinitionId']:
        if rng.random() < (0.4 if f in ('alarmName', 'stateChangeReason', 'alarmDescription') else 0.12):
            a.set(f, spoil(a.get(f)))
            where.append(f)
    for dims in all_metric_dims(a):
        for p in dims.pairs:
            r = rng.random()
            if r < 0.3:
                p[1] = spoil(p[1])
                where.append('dim:' + p[0])
            elif r < 0.4 and p[0] not in ('hostname', 'target_host'):
                p[0] = spoil(p[0])
                where.append('dim key')
    if not where:
        a.set('alarmName', spoil(a.get('alarmName')))
        where.append('alarmName')
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'lone surrogate escapes in ' + ', '.join(where), None


def c_duplicate_keys(rng, k):
    a = base_alarm(rng, metrics=gen_metrics(rng, n=rng.randint(1, 3)))
    kind = cover(rng, k, ['field', 'wrapper', 'dims', 'metric', 'actions', 'timestamp', 'metrics',
                          'required-null', 'field'])
    outer = None
    if kind == 'field':
        f = rng.choice(['alarmName', 'alarmDescription', 'stateChangeReason', 'severity', 'newState', 'link'])
        a.pairs.insert(rng.randint(0, len(a.pairs)), [f, rng.choice(['first ' + f, None, Raw('1')])])
        a.pairs.append([f, 'last ' + f])
        desc = '%s twice (the first occurrence earlier)' % f
    elif kind == 'wrapper':
        first = rng.choice([Raw('null'), Raw('{}'), Raw('"x"'), Pairs([['alarmName', 'decoy']])])
        outer = Pairs([['alarm-transitioned', first], ['other', 1], ['alarm-transitioned', a]])
        desc = '"alarm-transitioned" twice, the last one valid'
    elif kind == 'dims':
        dims = all_metric_dims(a)[0]
        k = rng.choice(['hostname', 'target_host', 'service'])
        dims.pairs.insert(0, [k, 'first-' + k])
        dims.pairs.append([k, 'last-' + k])
        desc = 'dimension %s twice' % k
    elif kind == 'metric':
        m = a.get('metrics')[0]
        m.pairs.append(['name', 'second.name'])
        m.pairs.insert(0, ['dimensions', Pairs([['hostname', 'first-host']])])
        desc = 'metric name and dimensions twice'
    elif kind == 'actions':
        a.pairs.append(['actionsEnabled', rng.choice([False, True, 0])])
        desc = 'actionsEnabled twice (last %s)' % json.dumps(a.pairs[-1][1])
    elif kind == 'timestamp':
        a.pairs.append(['timestamp', rng.choice([NOW_MS - (TTL + 5) * 1000, NOW_MS - 1000])])
        desc = 'timestamp twice (last %d)' % a.pairs[-1][1]
    elif kind == 'metrics':
        a.pairs.insert(1, ['metrics', []])
        desc = 'metrics twice (first [])'
    else:
        f = rng.choice(['lifecycleState', 'link', 'tenantId', 'alarmId'])
        a.pairs.append([f, None])
        desc = '%s twice, last null' % f
    b, lay, sty = to_bytes(outer or wrap(a), rng)
    return b, desc, None


def c_key_order(rng, k):
    a = base_alarm(rng)
    rng.shuffle(a.pairs)
    extras = []
    for _ in range(rng.randint(0, 3)):
        k = rng.choice(['alarm-unused', 'extra', 'alarmDefinitionName', '', 'ünknown', 'metrics ', '_'])
        if k not in a.keys():
            a.pairs.insert(rng.randint(0, len(a.pairs)), [k, rng.choice([1, 'x', None, Raw('{"a": [1]}')])])
            extras.append(k)
    for m in a.get('metrics'):
        rng.shuffle(m.pairs)
        if rng.random() < 0.3:
            m.set('unit', 'percent')
    outer = wrap(a)
    if rng.random() < 0.3:
        outer.pairs.insert(rng.randint(0, 1), ['meta', Pairs([['region', 'r1']])])
    b, lay, sty = to_bytes(outer, rng)
    return b, 'shuffled keys, unknown keys %s' % extras, None


def c_missing_optional(rng, k):
    a = base_alarm(rng, metrics=gen_metrics(rng, n=rng.randint(1, 3)))
    what = cover(rng, k, ['alarmDescription', 'subAlarms', 'metrics', 'metric.id', 'metric.name',
                          'metric.dimensions', 'metric.name+dimensions', 'alarmDescription'])
    if what.startswith('metric.'):
        ms = a.get('metrics')
        target = ms if rng.random() < 0.5 else [rng.choice(ms)]
        for m in target:
            for k in what.split('.')[1].split('+'):
                m.remove(k)
    else:
        a.remove(what)
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'missing %s' % what, None


REQUIRED = ['actionsEnabled', 'alarmId', 'alarmDefinitionId', 'alarmName', 'newState', 'oldState',
            'stateChangeReason', 'severity', 'link', 'lifecycleState', 'tenantId', 'timestamp']


def c_missing_required(rng, k):
    a = base_alarm(rng)
    gone = [REQUIRED[k]] if k < len(REQUIRED) else rng.sample(REQUIRED, rng.choice([1, 1, 1, 2]))
    for k in gone:
        a.remove(k)
    if rng.random() < 0.2:  # a near miss does not count
        a.pairs.append([gone[0][0].upper() + gone[0][1:], 'x'])
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'missing required %s' % ', '.join(gone), None


ACTIONS_VALUES = ['false', '0', '0.0', '-0.0', '""', 'null', '[]', '{}', '"false"', '"0"', '1', '-1', '[0]',
                  '{"a": false}', 'true', '1e-300', '"no"', '18446744073709551616', '0e5']


def c_actions_enabled(rng, k):
    a = base_alarm(rng)
    v = cover(rng, k, ACTIONS_VALUES)
    a.set('actionsEnabled', Raw(v))
    if rng.random() < 0.15:
        a.set('timestamp', Raw(rng.choice(['"1700000000000"', 'null', '[]', '1' + '0' * 400])))
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'actionsEnabled %s%s' % (v, ', timestamp %s' % a.get('timestamp').text[:20]
                                       if isinstance(a.get('timestamp'), Raw) else ''), None


TIMESTAMPS = [
    ('within ttl', lambda rng: str(NOW_MS - rng.randint(0, TTL * 1000))),
    ('exactly ttl old', lambda rng: str(NOW_MS - TTL * 1000)),
    ('ttl + 1 ms', lambda rng: str(NOW_MS - TTL * 1000 - 1)),
    ('exactly ttl old, float', lambda rng: '%d.0' % (NOW_MS - TTL * 1000)),
    ('ttl + 0.5 ms', lambda rng: '%d.5' % (NOW_MS - TTL * 1000 - 1)),
    ('ttl - 0.5 ms', lambda rng: '%d.5' % (NOW_MS - TTL * 1000)),
    ('exponent form', lambda rng: '1.7e12'),
    ('exponent form, now', lambda rng: '1.7000001E+12'),
    ('old', lambda rng: str(rng.choice([1600000000000, 1000000000000, NOW_MS - 86400000]))),
    ('zero', lambda rng: '0'),
    ('negative', lambda rng: rng.choice(['-1', '-1000', '-62135596800000'])),
    ('future', lambda rng: str(NOW_MS + rng.randint(1, 10 ** 9))),
    ('year 2100', lambda rng: '4102444800000'),
    ('year 10000', lambda rng: '253402300800000'),
    ('1e15', lambda rng: '1e15'),
    ('1e18', lambda rng: '1000000000000000000'),
    ('2^64', lambda rng: '18446744073709551616'),
    ('2^70', lambda rng: '1180591620717411303424'),
    ('10^30', lambda rng: '1' + '0' * 30),
    ('1e308 float', lambda rng: '1e308'),
    ('-1e20', lambda rng: '-1e20'),
    ('10^400 int', lambda rng: '1' + '0' * 400),
    ('-10^400 int', lambda rng: '-1' + '0' * 400),
    ('1e400 (inf)', lambda rng: '1e400'),
    ('-1e400 (-inf)', lambda rng: '-1e400'),
    ('fractional ms near now', lambda rng: '%d.%03d' % (NOW_MS - rng.randint(0, 99999), rng.randint(0, 999))),
    ('string', lambda rng: '"%d"' % NOW_MS),
    ('null', lambda rng: 'null'),
    ('true', lambda rng: 'true'),
    ('false', lambda rng: 'false'),
    ('list', lambda rng: '[%d]' % NOW_MS),
    ('object', lambda rng: '{}'),
    ('seconds not ms', lambda rng: str(int(NOW) - 10)),
]


def c_timestamps(rng, k):
    a = base_alarm(rng)
    label, make = cover(rng, k, TIMESTAMPS)
    text = make(rng)
    a.set('timestamp', Raw(text))
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'timestamp %s: %s' % (label, text[:40]), None


def c_no_actions(rng, k):
    a = base_alarm(rng)
    a.set('alarmDefinitionId', NO_ACTIONS)
    b, lay, sty = to_bytes(wrap(a), rng)
    return b, 'definition without alarm actions', None


def c_invalid_json(rng, k):
    a = base_alarm(rng)
    good, lay, sty = to_bytes(wrap(a), rng, style='raw')
    kind = cover(rng, k, ['truncated', 'trailing', 'bad-utf8', 'control', 'single-quotes', 'trailing-comma',
                          'nan', 'inf-number', 'too-many-digits', 'bom', 'empty', 'blank', 'comment',
                          'bad-escape', 'leading-zero', 'bad-number', 'unquoted-key', 'python-literal', 'deep',
                          'utf16', 'raw-control-ok', 'trailing-ws', 'truncated'])

    def subst(old, new):
        i = good.find(old)
        assert i >= 0, old
        return good[:i] + new + good[i + len(old):]

    name = emit_str(a.get('alarmName'), 'raw', rng).encode()
    if kind == 'truncated':
        b = good[:rng.randint(1, len(good) - 1)]
    elif kind == 'trailing':
        b = good + rng.choice([b'x', b',', b'}', b'\x00', b'{}', b' 1'])
    elif kind == 'bad-utf8':
        b = subst(name, name[:-1] + rng.choice([b'\xff', b'\xc3\x28', b'\xc0\xaf', b'\xed\xa0\x80',
                                                 b'\xe2\x82', b'\xf4\x90\x80\x80', b'\x80']) + b'"')
    elif kind == 'control':
        b = subst(name, name[:-1] + rng.choice([b'\x01', b'\n', b'\t', b'\r', b'\x00', b'\x1f']) + b'"')
    elif kind == 'single-quotes':
        b = subst(b'"alarmName"', b"'alarmName'")
    elif kind == 'trailing-comma':
        b = good[:good.rfind(b'}')] + b',}' if rng.random() < 0.5 else subst(b']', b',]')
    elif kind == 'nan':
        b = subst(b'"timestamp"', b'"x": %s, "timestamp"' % rng.choice([b'NaN', b'Infinity', b'-Infinity']))
    elif kind == 'inf-number':
        b = subst(b'"timestamp"', b'"x": %s, "timestamp"' % rng.choice([b'1e400', b'-1e400', b'1.8e308']))
    elif kind == 'too-many-digits':
        b = subst(b'"timestamp"', b'"x": 1%s, "timestamp"' % (b'0' * 4300))
    elif kind == 'bom':
        b = b'\xef\xbb\xbf' + good
    elif kind == 'empty':
        b = b''
    elif kind == 'blank':
        b = rng.choice([b' ', b'\n', b'\t\r\n'])
    elif kind == 'comment':
        b = subst(b'"timestamp"', b'/* c */ "timestamp"')
    elif kind == 'bad-escape':
        b = subst(name, name[:-1] + rng.choice([b'\\x41', b'\\u12', b'\\U0001F600', b"\\'", b'\\', b'\\u']) + b'"')
    elif kind == 'leading-zero':
        b = subst(b'"timestamp"', b'"x": 0123, "timestamp"')
    elif kind == 'bad-number':
        b = subst(b'"timestamp"', b'"x": %s, "timestamp"' % rng.choice([b'+1', b'.5', b'1.', b'-', b'1e', b'0x10']))
    elif kind == 'unquoted-key':
        b = subst(b'"alarmName"', b'alarmName')
    elif kind == 'python-literal':
        b = subst(b'"timestamp"', b'"x": %s, "timestamp"' % rng.choice([b'True', b'None', b'undefined']))
    elif kind == 'deep':
        b = subst(b'"timestamp"', b'"x": %s, "timestamp"' % nested(rng.choice([2000, 100000])).text.encode())
    elif kind == 'utf16':
        b = good.decode('utf-8').encode('utf-16')
    elif kind == 'raw-control-ok':   # DEL and C1 controls may stay raw: valid
        b = subst(name, name[:-1] + rng.choice(['\x7f', '\x85', '\u2028']).encode() + b'"')
    else:                            # white space around the value: valid
        b = rng.choice([b' ', b'\r\n', b'\t']) + good + rng.choice([b'\n', b' \r\n'])
    accepted = ('bom', 'raw-control-ok', 'trailing-ws', 'inf-number')
    return b, ('JSON edge (the original takes it): %s' if kind in accepted else 'invalid JSON: %s') % kind, None


def c_non_object(rng, k):
    a = base_alarm(rng)
    kind = cover(rng, k, ['top-array', 'top-wrapped-array', 'top-string', 'top-number', 'top-null', 'top-true',
                          'top-empty-object', 'wrapper-null', 'wrapper-array', 'wrapper-number', 'wrapper-string',
                          'string-with-field-names', 'list-of-field-names', 'wrong-wrapper-key', 'bare-alarm'])
    names = ' '.join(REQUIRED)
    docs = {
        'top-array': Raw('[]'), 'top-wrapped-array': [wrap(a)], 'top-string': 'alarm-transitioned',
        'top-number': Raw('42'), 'top-null': Raw('null'), 'top-true': Raw('true'), 'top-empty-object': Raw('{}'),
        'wrapper-null': Pairs([['alarm-transitioned', None]]), 'wrapper-array': Pairs([['alarm-transitioned', []]]),
        'wrapper-number': Pairs([['alarm-transitioned', 7]]),
        'wrapper-string': Pairs([['alarm-transitioned', 'alarm']]),
        'string-with-field-names': Pairs([['alarm-transitioned', names]]),
        'list-of-field-names': Pairs([['alarm-transitioned', list(REQUIRED)]]),
        'wrong-wrapper-key': Pairs([[rng.choice(['alarm-transition', 'alarmTransitioned', 'Alarm-transitioned',
                                                 'alarm-transitioned ']), a]]),
        'bare-alarm': a,
    }
    b, lay, sty = to_bytes(docs[kind], rng)
    return b, 'not an alarm object: %s' % kind, None


SLACK_URLS = [
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?token=x&channel='),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?token=&channel=#alerts'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?foo=&bar=1'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?token=xoxb-1&channel=#alerts&empty='),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?=x&token=a'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?flag&token=a'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?a=1&b=2&a=3&a='),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?text=hello+world&x=%20y&z=a%2Bb'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?channel=%23a%26b&token=t'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?q=caf%C3%A9&r=\u00e9&s=\U0001f525'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?token=x;channel=y'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?&&'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?a=%ZZ&b=%'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?channel=#alerts#more&token=t'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage;v=1?token=a'),
    (SLACK_API_ID, 'https://slack.example/a/../api/./chat.postMessage?token=a'),
    (SLACK_API_ID, 'https://slack.example/api/ch\u00e4t?token=a&channel=#\u00e9'),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage?token=a b&channel=c"d<e>'),
    (SLACK_API_ID, 'https://slack.example:8443/api/chat.postMessage?channel=&token='),
    (SLACK_API_ID, 'https://slack.example/api/chat.postMessage#alerts'),
    (SLACK_HOOK_ID, 'https://hooks.slack.example/services/x?foo=&bar=1'),
    (SLACK_HOOK_ID, 'https://hooks.slack.example/services/x?'),
    (SLACK_HOOK_ID, 'https://hooks.slack.example/services/T0/B0/xyz?channel=#ops&username='),
    (SLACK_HOOK_ID, 'https://hooks.slack.example/services/x/?a=1&a=1'),
]


def valid_alarm_bytes(rng):
    """A well-formed alarm for the Slack cases (some with unusual text)."""
    a = base_alarm(rng)
    if rng.random() < 0.3:
        _texts(rng, a, rng.choice([unicode_text, escape_text]), 'text')
    b, lay, sty = to_bytes(wrap(a), rng)
    return b


def c_slack_method_url(rng, k):
    mid, url = cover(rng, k, SLACK_URLS)
    return valid_alarm_bytes(rng), 'Slack method address with an unusual query/path', \
        {'kind': 'method-address', 'method_id': mid, 'address': url}


def _resp(status, content_type, body):
    return {'status': status, 'content_type': content_type, 'body': body}


JSON_REFUSALS = [
    _resp(200, 'application/json', '{"ok": false, "error": "invalid_payload"}'),
    _resp(200, 'application/json', '{"ok": false}'),
    _resp(200, 'application/json; charset=utf-8', '{"ok": 0, "error": "no_text"}'),
    _resp(200, 'application/json', '{"ok": null}'),
    _resp(200, 'application/json', '{}'),
    _resp(200, 'application/json', '{"ok": ""}'),
    _resp(200, 'text/plain', 'invalid_payload'),
    _resp(200, 'text/html', 'ok '),
    _resp(200, None, 'ok'),
    _resp(400, 'text/plain', 'invalid_payload'),
    _resp(500, 'application/json', '{"ok": true}'),
    _resp(200, 'application/json', 'not json'),
]
JSON_ACCEPTS = [  # answers the first post takes as success (no fallback)
    _resp(200, 'application/json', '{"ok": "false"}'),
    _resp(201, 'text/plain', 'ok'),
    _resp(299, 'application/json', '{"ok": 1}'),
]
FORM_ANSWERS = [
    _resp(200, 'text/html', 'ok'),
    _resp(200, 'text/plain; charset=utf-8', 'ok'),
    _resp(200, 'application/json', '{"ok": true}'),
    _resp(200, 'application/json', '{"ok": false, "error": "channel_not_found"}'),
    _resp(500, 'text/plain', 'boom'),
    _resp(200, 'text/plain', 'OK'),
    _resp(200, None, 'ok'),
]


def c_slack_responses(rng, k):
    if k < len(JSON_REFUSALS) + len(JSON_ACCEPTS):
        json_post = (JSON_REFUSALS + JSON_ACCEPTS)[k]
        form_post = FORM_ANSWERS[k % len(FORM_ANSWERS)]
    else:
        json_post = rng.choice(JSON_REFUSALS) if rng.random() < 0.85 else rng.choice(JSON_ACCEPTS)
        form_post = rng.choice(FORM_ANSWERS)
    return valid_alarm_bytes(rng), 'canned Slack answers (first post / form-data fallback)', \
        {'kind': 'slack-responses', 'hosts': SLACK_HOSTS, 'json_post': json_post, 'form_post': form_post}


def c_slack_cache(rng, k):
    urls = cover(rng, k, [['https://hooks.slack.example/services/x'],
                          ['https://slack.example/api/chat.postMessage'],
                          ['https://hooks.slack.example/services/x', 'https://slack.example/api/chat.postMessage']])
    return valid_alarm_bytes(rng), 'Slack URL(s) already in the raw-data cache', \
        {'kind': 'slack-raw-data-cache', 'cached_urls': urls}


# name -> (function, weight)
CLASSES = [
    ('thresh-like', c_thresh_like, 14),
    ('unicode-text', c_unicode_text, 8),
    ('escapes', c_escapes, 7),
    ('long-text', c_long_text, 3),
    ('dimension-numbers', c_dimension_numbers, 8),
    ('dimension-structured', c_dimension_structured, 6),
    ('hosts', c_hosts, 6),
    ('subalarm-values', c_subalarm_values, 4),
    ('states-severity', c_states_severity, 5),
    ('alarm-id-null', c_alarm_id_null, 4),
    ('odd-types', c_odd_types, 5),
    ('lone-surrogates', c_lone_surrogates, 5),
    ('duplicate-keys', c_duplicate_keys, 4),
    ('key-order', c_key_order, 3),
    ('missing-optional', c_missing_optional, 4),
    ('missing-required', c_missing_required, 3),
    ('actions-enabled', c_actions_enabled, 4),
    ('timestamps', c_timestamps, 6),
    ('no-actions', c_no_actions, 2),
    ('invalid-json', c_invalid_json, 5),
    ('non-object', c_non_object, 3),
    ('slack-method-url', c_slack_method_url, 4),
    ('slack-responses', c_slack_responses, 5),
    ('slack-raw-data-cache', c_slack_cache, 1),
]


def class_of(rng, index):
    if index < len(CLASSES):
        return CLASSES[index]
    return rng.choices(CLASSES, [w for _, _, w in CLASSES])[0]


def generate(seed, index, ordinals):
    """Message `index`; `ordinals` counts the messages of each class before it (updated here, so
    call this for index 0, 1, 2, ... in turn). Everything follows from SEED and the index."""
    rng = random.Random('%d/%d' % (seed, index))
    name, fn, _ = class_of(rng, index)
    k = ordinals.get(name, 0)
    ordinals[name] = k + 1
    value, description, variant = fn(rng, k)
    assert isinstance(value, bytes)
    return name, value, description, variant


# =========================================================================== running the original
def slack_responder(variant):
    def responder(request):
        host = request.url.split('://', 1)[-1].split('/', 1)[0].split(':', 1)[0]
        if host not in variant['hosts']:
            return None
        if request.headers.get('Content-Type') == 'application/json':
            return dict(variant['json_post'])
        return dict(variant['form_post'])
    return responder


def run_one(value, offset, variant):
    saved_methods = list(nx.METHODS)

    def prepare():
        if variant is None:
            return
        if variant['kind'] == 'method-address':
            for i, m in enumerate(nx.METHODS):
                if m['id'] == variant['method_id']:
                    nx.METHODS[i] = dict(m, address=variant['address'])
        elif variant['kind'] == 'slack-responses':
            nx.REC.responder = slack_responder(variant)
        elif variant['kind'] == 'slack-raw-data-cache':
            nx.slack_notifier.SlackNotifier._raw_data_url_caches = list(variant['cached_urls'])
        else:
            raise AssertionError(variant)

    try:
        _startup_events, _startup_sql, crash = nx.run_case(value, offset, prepare)
        out = nx.summarise(None, None, None, value, nx.REC.events, nx.REC.sql, crash)
    finally:
        nx.METHODS[:] = saved_methods
    if variant and variant['kind'] == 'slack-raw-data-cache':
        out['slack_raw_data_url_cache_after'] = list(nx.slack_notifier.SlackNotifier._raw_data_url_caches)
    return out


SITE = os.path.dirname(os.path.dirname(os.path.abspath(nx.notification_engine.__file__)))


def clean(v):
    """Values plain JSON parsers take: see the module docstring."""
    if isinstance(v, str):
        try:
            v.encode('utf-8')
            return v
        except UnicodeEncodeError:
            return {'wtf8_b64': base64.b64encode(v.encode('utf-8', 'surrogatepass')).decode('ascii')}
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v if -2 ** 63 <= v < 2 ** 64 else {'big_int': str(v)}
    if isinstance(v, float):
        return v if math.isfinite(v) else {'float': repr(v)}
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            ck = clean(k)
            if isinstance(ck, dict):
                ck = 'wtf8_b64:' + ck['wtf8_b64']
            out[ck] = clean(x)
        return out
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    raise TypeError('unexpected %r in the record' % type(v))


def record(seed, index, cls, value, description, variant):
    out = run_one(value, index, variant)
    if out['crash'] and out['crash'].get('traceback_tail'):
        out['crash']['traceback_tail'] = [line.replace(SITE + os.sep, '') for line in out['crash']['traceback_tail']]
    head = {'class': cls, 'case': '%s-%05d' % (cls, index), 'index': index, 'seed': seed,
            'description': description,
            'input': {'value_b64': base64.b64encode(value).decode('ascii'), 'offset': index},
            'variant': variant}
    for k in ('case', 'description', 'input'):
        del out[k]
    head.update(out)
    return clean(head)


def main(argv):
    if len(argv) != 4:
        sys.exit('usage: notification_differential.py SEED COUNT OUT.jsonl')
    seed, count, path = int(argv[1]), int(argv[2]), argv[3]
    if seed < 0 or count < 1:
        sys.exit('SEED must be >= 0 and COUNT >= 1')
    started = time.perf_counter()
    stats = {}
    ordinals = {}
    with open(path, 'w', encoding='ascii', newline='\n') as f:
        for i in range(count):
            cls, value, description, variant = generate(seed, i, ordinals)
            rec = record(seed, i, cls, value, description, variant)
            line = json.dumps(rec, ensure_ascii=True, allow_nan=False, separators=(',', ':'))
            assert '\n' not in line
            f.write(line + '\n')
            s = stats.setdefault(cls, {'count': 0, 'notified': 0, 'sent': 0, 'failed': 0, 'crash': 0,
                                       'raised': 0, 'skipped': 0})
            s['count'] += 1
            notes = rec['notifications']
            s['notified'] += bool(notes)
            s['sent'] += sum(n.get('result') == 'sent' for n in notes)
            s['failed'] += sum(n.get('result') == 'failed' for n in notes)
            s['crash'] += rec['crash'] is not None
            s['raised'] += bool(rec['exceptions'])
            s['skipped'] += rec['crash'] is None and not notes
    elapsed = time.perf_counter() - started

    total = {k: sum(s[k] for s in stats.values()) for k in ('count', 'notified', 'sent', 'failed', 'crash',
                                                           'raised', 'skipped')}
    w = max(len(c) for c in list(stats) + ['class'])
    cols = ('count', 'notified', 'sent', 'failed', 'crash', 'raised', 'skipped')
    print('%-*s %s' % (w, 'class', ' '.join('%8s' % c for c in cols)), file=sys.stderr)
    for name, _, _ in CLASSES:
        if name in stats:
            print('%-*s %s' % (w, name, ' '.join('%8d' % stats[name][c] for c in cols)), file=sys.stderr)
    print('%-*s %s' % (w, 'total', ' '.join('%8d' % total[c] for c in cols)), file=sys.stderr)
    print('notified: messages with at least one notification handed to a plugin; sent/failed: '
          'notifications; crash: exception escaped NotificationEngine.run; raised: exceptions the original '
          'caught (parse or plugin); skipped: no crash and no notification', file=sys.stderr)
    print('%d messages in %.1f s (%.1f ms each) -> %s' % (count, elapsed, 1000 * elapsed / count, path),
          file=sys.stderr)
    # A broken interception (no database rows, no plugin reached) would still write lines: refuse it.
    if count >= 50 and total['notified'] < count // 2:
        print('only %d of %d messages reached a plugin: the set-up is broken' % (total['notified'], count),
              file=sys.stderr)
        os.remove(path)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(ARGV))
