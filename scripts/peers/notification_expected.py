#!/usr/bin/env python3
"""Expected output of the ORIGINAL monasca-notification 9.0.0 for our notification fixtures.

Our own code (not part of monasca-notification). It IMPORTS THE ORIGINAL PACKAGE from PyPI and
drives its real code paths -- NotificationEngine.run, AlarmProcessor.to_notification (with the
real MysqlRepo), NotificationProcessor.send and the real email/webhook/pagerduty/slack/jira
plugins -- with every side effect intercepted and recorded instead of performed:

  * Kafka: a fake consumer yields one message per case; a fake producer records publish() calls.
  * MySQL: pymysql.connect returns a fake connection (records SQL text + arguments, answers from
    tests/fixtures/notification/methods.json).
  * HTTP: requests.post is wrapped (records its keyword arguments) and
    requests.adapters.HTTPAdapter.send is replaced (records the prepared request: method, URL with
    query string, headers in order, exact body bytes) and answers with a canned response.
  * SMTP: smtplib.SMTP is replaced (records connect/login/sendmail arguments).
  * Jira: jira.JIRA is replaced (records constructor, search_issues, create_issue, add_comment, ...).
  * Time: time.time() returns config.json "now"; TZ=UTC (email Date header uses local time).

How to run (from the repository root):

  python3 -m venv target/peers/notification-venv
  target/peers/notification-venv/bin/pip install 'monasca-notification[jira_plugin]==9.0.0'
  target/peers/notification-venv/bin/python scripts/peers/notification_expected.py

(The jira_plugin extra only adds Jinja2, which slack_notifier and jira_notifier import.)
It rewrites tests/fixtures/notification/expected/*.json. Output is deterministic.
scripts/peers/notification_differential.py imports this module (its interceptors, run_case,
summarise) to run generated alarms the same way.
"""

import email
import email.header
import json
import os
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, 'tests', 'fixtures', 'notification')
OUT = os.path.join(FIX, 'expected')

CONFIG = json.load(open(os.path.join(FIX, 'config.json')))
METHODS = json.load(open(os.path.join(FIX, 'methods.json')))
NOW = float(CONFIG['now'])

os.environ['TZ'] = CONFIG['tz']
# requests reads CA bundles and proxies from the environment (trust_env): keep them out so the
# recorded verify/proxies are the plugins' own values.
for _var in list(os.environ):
    if _var.upper() in ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'HTTP_PROXY', 'HTTPS_PROXY',
                        'ALL_PROXY', 'NO_PROXY'):
        del os.environ[_var]
time.tzset()
time.time = lambda: NOW  # noqa: E731  (module attribute: every caller of time.time() sees it)

import pymysql  # noqa: E402
import requests  # noqa: E402
import requests.adapters  # noqa: E402
import smtplib  # noqa: E402
import jira  # noqa: E402

from monasca_notification import config as mn_config  # noqa: E402
from monasca_notification import notification_engine  # noqa: E402
from monasca_notification.common import utils as mn_utils  # noqa: E402
from monasca_notification.plugins import slack_notifier  # noqa: E402
from monasca_notification.processors import alarm_processor  # noqa: E402
from monasca_notification.processors import notification_processor  # noqa: E402
from monasca_notification.types import notifiers  # noqa: E402

# Cases: (input file, 1-based line) -> (slug, what it covers). Every input line must be listed.
CASES = {
    ('alarm-transitions.jsonl', 1): ('single-host', 'one metric with hostname; OK->ALARM HIGH; link/lifecycleState null'),
    ('alarm-transitions.jsonl', 2): ('host-and-target', 'hostname + target_host; UNDETERMINED->ALARM CRITICAL; link and lifecycleState set; timestamp with ms part'),
    ('alarm-transitions.jsonl', 3): ('several-hosts', 'three metrics, three hostnames; ALARM->OK MEDIUM'),
    ('alarm-transitions.jsonl', 4): ('one-host-two-metrics', 'same hostname twice, target_host only on the 2nd metric; LOW'),
    ('alarm-transitions.jsonl', 5): ('no-hostname', 'no hostname dimension (target_host alone); OK->UNDETERMINED LOW'),
    ('alarm-transitions.jsonl', 6): ('empty-metrics', 'metrics: [] (email crashes); CRITICAL'),
    ('alarm-transitions.jsonl', 7): ('empty-dimensions', 'one metric with dimensions {}; ALARM->UNDETERMINED MEDIUM'),
    ('alarm-transitions.jsonl', 8): ('non-ascii', 'non-ASCII (incl. astral emoji, Greek final sigma, dotted I) in name, description, reason, dims, link, lifecycleState'),
    ('alarm-transitions.jsonl', 9): ('escapes', 'quotes, backslashes, \\n \\r \\t, U+0001, U+2028 in name/description/reason/dims/link'),
    ('alarm-transitions.jsonl', 10): ('long-subject', 'long alarm name (Subject folding), long link, ms part .999'),
    ('alarm-transitions.jsonl', 11): ('key-order-numbers', 'keys in non-thresh order, an unknown key, number spellings 1e-7 1E+21 10.50 -0.0 2^64+ 1.5e300'),
    ('alarm-transitions.jsonl', 12): ('null-description', 'alarmDescription null; UNDETERMINED->OK LOW; lifecycleState ACKNOWLEDGED'),
    ('alarm-transitions-extra.jsonl', 1): ('actions-disabled', 'actionsEnabled false -> skipped'),
    ('alarm-transitions-extra.jsonl', 2): ('ttl-expired', 'timestamp 2023-11-01T00:00:00Z, older than ttl -> skipped'),
    ('alarm-transitions-extra.jsonl', 3): ('ttl-boundary-valid', 'age exactly 14400 s -> still valid (test is >)'),
    ('alarm-transitions-extra.jsonl', 4): ('ttl-boundary-expired', 'age 14400.001 s -> skipped'),
    ('alarm-transitions-extra.jsonl', 5): ('missing-metrics', 'no "metrics" key -> KeyError escapes to_notification (engine process dies, no commit)'),
    ('alarm-transitions-extra.jsonl', 6): ('missing-description', 'no "alarmDescription" key -> webhook/slack/jira fail (retry topic), email/pagerduty sent'),
    ('alarm-transitions-extra.jsonl', 7): ('missing-required-key', 'no "lifecycleState" -> AlarmFormatError, skipped, committed'),
    ('alarm-transitions-extra.jsonl', 8): ('not-wrapped', 'alarm object without the "alarm-transitioned" wrapper -> KeyError, skipped'),
    ('alarm-transitions-extra.jsonl', 9): ('not-json', 'truncated JSON -> JSONDecodeError, skipped'),
    ('alarm-transitions-extra.jsonl', 10): ('no-actions', 'definition with no alarm_action rows -> nothing sent'),
    ('alarm-transitions-extra.jsonl', 11): ('actions-enabled-zero', 'actionsEnabled 0 (falsy non-bool) -> skipped'),
    ('alarm-transitions-extra.jsonl', 12): ('future-timestamp', 'timestamp 100 s after now (negative age) -> valid'),
}

# Variants: a case re-run with one thing changed.
VARIANTS = {
    'variant-jira-existing-closed': ('single-host', 'jira search_issues returns an existing issue in state "Closed"'),
    'variant-slack-json-refused': ('single-host', 'slack answers the JSON post with {"ok": false} -> plugin retries as form data'),
    'variant-email-no-grafana': ('single-host', 'email_notifier.grafana_url unset -> "Link to Grafana: None"'),
    'variant-keystone-webhook': ('single-host', 'keystone.auth_required=True -> webhook adds X-Auth-Token (token mocked)'),
    'variant-http-500': ('single-host', 'every HTTP endpoint answers 500 -> webhook/pagerduty/slack fail'),
    'variant-jira-rest': ('single-host', 'the real jira library (version in the note) against canned Jira Server '
                                         'REST answers: the HTTP requests it makes'),
}


# --------------------------------------------------------------------------- recorders
class Recorder(object):
    def __init__(self):
        self.reset()

    def reset(self):
        self.events = []          # in call order, across all interceptors
        self.sql = []
        self.exceptions = []
        self.responses = []       # queue of canned responses (dicts); default when empty
        self.default_response = dict(CONFIG['http_response'])
        self.jira_search_result = []
        self.current_method = None
        self.logs = []
        self.responder = None     # optional function(prepared request) -> canned response

    def add(self, event):
        event.setdefault('method_id', self.current_method)
        self.events.append(event)


REC = Recorder()


def jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, bytes):
        return v.decode('utf-8', 'surrogateescape')
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [jsonable(x) for x in v]
    return repr(v)


# ---- MySQL
class FakeCursor(object):
    def __init__(self, db):
        self._db = db
        self._rows = []

    def execute(self, sql, args=None):
        REC.sql.append({'sql': sql, 'args': jsonable(args)})
        if 'FROM alarm_action' in sql:
            definition_id, _state = args
            if definition_id in CONFIG['alarm_definitions_without_actions']:
                self._rows = []
            else:
                self._rows = [(m['id'], m['type'], m['name'], m['address'], m['period']) for m in METHODS]
        elif 'from notification_method_type' in sql:
            self._rows = [(t,) for t in sorted(self._db.types)]
        else:
            raise AssertionError('unexpected SQL ' + sql)

    def executemany(self, sql, seq):
        seq = list(seq)
        REC.sql.append({'sql': sql, 'args': sorted(seq), 'executemany': True})
        self._db.types.update(seq)

    def __iter__(self):
        return iter(self._rows)

    def fetchone(self):
        return self._rows[0] if self._rows else None


class FakeDb(object):
    def __init__(self):
        self.types = set()

    def autocommit(self, flag):
        pass

    def cursor(self):
        return FakeCursor(self)


def fake_pymysql_connect(**kwargs):
    REC.add({'kind': 'mysql.connect', 'kwargs': jsonable(kwargs)})
    return FakeDb()


pymysql.connect = fake_pymysql_connect

# ---- HTTP
_orig_post = requests.post


def recording_post(*args, **kwargs):
    # the body itself is recorded once, as sent (see fake_adapter_send)
    shown = {k: v for k, v in kwargs.items() if k not in ('data', 'json')}
    shown['body_kwarg'] = [k for k in ('data', 'json') if k in kwargs]
    REC.add({'kind': 'requests.post', 'args': jsonable(args), 'kwargs': jsonable(shown)})
    return _orig_post(*args, **kwargs)


requests.post = recording_post


def fake_adapter_send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
    body = request.body
    if isinstance(body, str):
        body_type = 'str'
        # http.client encodes str bodies as ISO-8859-1
        body_bytes = body.encode('iso-8859-1')
    else:
        body_type = 'bytes' if body is not None else 'none'
        body_bytes = body or b''
    canned = (REC.responder and REC.responder(request)) or \
        (REC.responses.pop(0) if REC.responses else REC.default_response)
    REC.add({
        'kind': 'http', 'method_id': REC.current_method,
        'method': request.method, 'url': request.url,
        'headers': [[k, v] for k, v in request.headers.items()],
        'body': body_bytes.decode('utf-8'),
        'body_python_type': body_type,
        'timeout': timeout, 'verify': verify, 'proxies': jsonable(proxies),
        'response': canned,
    })
    resp = requests.models.Response()
    resp.status_code = canned['status']
    resp.headers = requests.structures.CaseInsensitiveDict({'Content-Type': canned['content_type']})
    resp._content = canned['body'].encode('utf-8')
    resp.encoding = 'utf-8'
    resp.url = request.url
    resp.request = request
    return resp


requests.adapters.HTTPAdapter.send = fake_adapter_send


# ---- SMTP
class FakeSMTP(object):
    def __init__(self, host='', port=0, local_hostname=None, timeout=None, **kw):
        REC.add({'kind': 'smtp.connect', 'host': host, 'port': port, 'timeout': timeout})

    def login(self, user, password):
        REC.add({'kind': 'smtp.login', 'user': user, 'password': password})

    def sendmail(self, from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
        parsed = email.message_from_string(msg)
        subject = str(email.header.make_header(email.header.decode_header(parsed['Subject'])))
        body = parsed.get_payload(decode=True).decode('utf-8')
        REC.add({
            'kind': 'smtp.sendmail', 'method_id': REC.current_method,
            'from_addr': from_addr, 'to_addrs': to_addrs,
            'message': msg,
            'headers': [[k, v] for k, v in parsed.items()],
            'subject_decoded': subject,
            'body_decoded': body,
        })
        return {}


smtplib.SMTP = FakeSMTP


# ---- Jira
class FakeStatus(object):
    def __init__(self, name):
        self.name = name


class FakeFields(object):
    def __init__(self, status):
        self.status = FakeStatus(status)


class FakeIssue(object):
    def __init__(self, key, status):
        self.key = key
        self.fields = FakeFields(status)

    def __str__(self):
        return self.key


class FakeJIRA(object):
    def __init__(self, server=None, options=None, basic_auth=None, proxies=None, **kw):
        REC.add({'kind': 'jira.JIRA', 'method_id': REC.current_method, 'server': server,
                 'basic_auth': jsonable(basic_auth), 'proxies': jsonable(proxies),
                 'other_kwargs': jsonable(kw), 'options': jsonable(options)})

    def search_issues(self, jql, *a, **kw):
        REC.add({'kind': 'jira.search_issues', 'jql': jql})
        return [FakeIssue(k, s) for k, s in REC.jira_search_result]

    def create_issue(self, fields=None, **kw):
        REC.add({'kind': 'jira.create_issue', 'fields': jsonable(fields)})
        return FakeIssue('MON-1', 'Open')

    def transitions(self, issue):
        REC.add({'kind': 'jira.transitions', 'issue': str(issue)})
        return [{'id': '11', 'name': 'Start Progress'}, {'id': '3', 'name': 'Reopen Issue'}]

    def transition_issue(self, issue, transition, *a, **kw):
        REC.add({'kind': 'jira.transition_issue', 'issue': str(issue), 'transition': transition})

    def add_comment(self, issue, body, *a, **kw):
        REC.add({'kind': 'jira.add_comment', 'issue': str(issue), 'body': body})


_REAL_JIRA = jira.JIRA
jira.JIRA = FakeJIRA


def slack_refusing_responder(request):
    """Slack incoming-webhook URL refuses JSON ({"ok": false}) and accepts the form post."""
    if request.url.startswith('https://hooks.slack.example/'):
        if request.headers.get('Content-Type') == 'application/json':
            return {'status': 200, 'content_type': 'application/json',
                    'body': '{"ok": false, "error": "invalid_payload"}'}
        return {'status': 200, 'content_type': 'text/html', 'body': 'ok'}
    return None


def jira_rest_responder(request):
    """Canned Jira Server REST answers, for the variant that runs the real jira library."""
    path = request.url.split('://', 1)[1].split('/', 1)[1].split('?')[0]
    j = lambda body, status=200: {'status': status, 'content_type': 'application/json;charset=UTF-8',  # noqa
                                  'body': json.dumps(body)}
    if path == 'rest/api/2/serverInfo':
        return j({'baseUrl': 'https://jira.example', 'version': '9.4.0', 'versionNumbers': [9, 4, 0],
                  'deploymentType': 'Server', 'buildNumber': 940000, 'serverTitle': 'Jira'})
    if path == 'rest/api/2/field':
        return j([{'id': 'summary', 'name': 'Summary', 'custom': False, 'schema': {'type': 'string'}},
                  {'id': 'description', 'name': 'Description', 'custom': False, 'schema': {'type': 'string'}}])
    if path == 'rest/api/2/search':
        return j({'startAt': 0, 'maxResults': 50, 'total': 0, 'issues': []})
    if path == 'rest/api/2/issue' and request.method == 'POST':
        return j({'id': '10001', 'key': 'MON-1', 'self': 'https://jira.example/rest/api/2/issue/10001'}, 201)
    if path == 'rest/api/2/issue/MON-1' and request.method == 'GET':
        return j({'id': '10001', 'key': 'MON-1', 'self': 'https://jira.example/rest/api/2/issue/10001',
                  'fields': {'status': {'name': 'Open'}, 'summary': 's'}})
    if path == 'rest/api/2/issue/MON-1/comment':
        return j({'id': '20001', 'self': 'https://jira.example/rest/api/2/issue/10001/comment/20001',
                  'body': 'x'}, 201)
    return j({'errorMessages': ['unexpected ' + path]}, 404)


# ---- keystone (variant only)
mn_utils.get_auth_token = lambda: 'gAAAAA-fake-keystone-token'


# ---- Kafka
class FakeMessage(object):
    def __init__(self, value, offset):
        self._value = value
        self._offset = offset

    def value(self):
        return self._value

    def partition(self):
        return 0

    def offset(self):
        return self._offset


class FakeConsumer(object):
    def __init__(self, messages):
        self._messages = messages
        self.commits = 0

    def __iter__(self):
        return iter(self._messages)

    def commit(self):
        REC.add({'kind': 'kafka.commit'})
        self.commits += 1


class FakeProducer(object):
    def publish(self, topic, messages, key=None):
        if not isinstance(messages, list):
            messages = [messages]
        # monasca_common.confluent_kafka.producer: one produce() per message, key None
        REC.add({'kind': 'kafka.publish', 'topic': topic,
                 'values': [m if isinstance(m, str) else m.decode('utf-8') for m in messages]})


# ---- exception capture at the places where the original swallows them
_orig_parse = alarm_processor.AlarmProcessor._parse_alarm


def recording_parse(alarm_data):
    try:
        return _orig_parse(alarm_data)
    except Exception as e:
        REC.exceptions.append({'where': 'AlarmProcessor._parse_alarm (caught: skipped + committed)',
                               'exception': type(e).__name__, 'message': str(e)})
        raise


alarm_processor.AlarmProcessor._parse_alarm = staticmethod(recording_parse)

_orig_valid = alarm_processor.AlarmProcessor._alarm_is_valid


def recording_valid(self, alarm):
    result = _orig_valid(self, alarm)
    try:
        age = NOW - alarm['timestamp'] / 1000
    except Exception:  # a timestamp the original never divided (actions disabled)
        age = None
    REC.add({'kind': 'alarm_is_valid', 'result': result, 'age_seconds': age})
    return result


alarm_processor.AlarmProcessor._alarm_is_valid = recording_valid


def recording_single(notification):
    REC.current_method = notification.id
    plugin = notifiers.configured_notifiers[notification.type]
    try:
        result = plugin.send_notification(notification)
    except Exception as e:
        REC.exceptions.append({'where': 'plugin %s send_notification (caught by send_single_notification: failed)'
                                        % notification.type,
                               'method_id': notification.id,
                               'exception': type(e).__name__, 'message': str(e)})
        # what send_single_notification does then (without calling the plugin a second time)
        notifiers.log.exception("send_notification exception for {}".format(notification.type))
        result = False
    REC.add({'kind': 'send_result', 'method_id': notification.id, 'type': notification.type,
             'result': result})
    REC.current_method = None
    return result


notifiers.send_single_notification = recording_single


# --------------------------------------------------------------------------- setup
def write_ini(path, overrides=None):
    groups = json.loads(json.dumps(CONFIG['oslo_config']))
    for (g, k), v in (overrides or {}).items():
        groups.setdefault(g, {})
        if v is None:
            groups[g].pop(k, None)
        else:
            groups[g][k] = v
    with open(path, 'w') as f:
        for g, opts in groups.items():
            f.write('[%s]\n' % g)
            for k, v in opts.items():
                f.write('%s = %s\n' % (k, v))
            f.write('\n')


TMP = tempfile.mkdtemp(prefix='mn-expected-')
INI = os.path.join(TMP, 'monasca-notification.conf')
write_ini(INI)
sys.argv = ['monasca-notification']
mn_config.parse_args(['--config-file', INI])
CONF = mn_config.CONF
import logging  # noqa: E402


class CaptureLogs(logging.Handler):
    """Keeps WARNING+ log records of the original code (they show the swallowed errors)."""

    def emit(self, record):
        if record.name.startswith(('urllib3', 'requests', 'jira')):
            return
        entry = {'level': record.levelname, 'logger': record.name,
                 'message': record.getMessage().split('\n')[0]}
        if record.exc_info and record.exc_info[0] is not None:
            entry['exc'] = record.exc_info[0].__name__ + ': ' + str(record.exc_info[1])
        REC.logs.append(entry)


_root = logging.getLogger()
for _h in list(_root.handlers):
    _root.removeHandler(_h)
_root.addHandler(CaptureLogs(level=logging.WARNING))
_root.setLevel(logging.WARNING)
for _name in ('monasca_notification', 'monasca_common'):
    logging.getLogger(_name).setLevel(logging.WARNING)


def new_engine(messages):
    eng = notification_engine.NotificationEngine.__new__(notification_engine.NotificationEngine)
    eng._statsd = mn_utils.get_statsd_client()
    eng._consumer = FakeConsumer(messages)
    eng._producer = FakeProducer()
    eng._alarms = alarm_processor.AlarmProcessor()
    eng._notifier = notification_processor.NotificationProcessor()
    return eng


def run_case(value, offset, prepare=None):
    """One message through a new engine; prepare() (optional) runs just before the engine does."""
    REC.reset()
    slack_notifier.SlackNotifier._raw_data_url_caches = []
    eng = new_engine([FakeMessage(value, offset)])
    startup_events, startup_sql = REC.events, REC.sql
    REC.events, REC.sql, REC.logs = [], [], []
    if prepare is not None:
        prepare()
    crash = None
    try:
        eng.run()
    except Exception as e:
        crash = {'exception': type(e).__name__, 'message': str(e),
                 'traceback_tail': traceback.format_exc().strip().splitlines()[-3:]}
    return startup_events, startup_sql, crash


def summarise(slug, description, src, value, events, sql, crash):
    methods = {m['id']: m for m in METHODS}
    out = {'case': slug, 'description': description, 'input': src,
           'now': NOW,
           'processor': None, 'sql': sql, 'exceptions': REC.exceptions, 'crash': crash,
           'log_warnings_errors': REC.logs,
           'committed': any(e['kind'] == 'kafka.commit' for e in events),
           'kafka_out': [], 'notifications': []}
    valid = [e for e in events if e['kind'] == 'alarm_is_valid']
    parsed = not any(x['where'].startswith('AlarmProcessor._parse_alarm') for x in REC.exceptions)
    out['processor'] = {'parsed': parsed,
                        'valid': valid[0]['result'] if valid else None,
                        'age_seconds': valid[0]['age_seconds'] if valid else None}
    for e in events:
        if e['kind'] == 'kafka.publish':
            for v in e['values']:
                out['kafka_out'].append({'topic': e['topic'], 'value': v})
    # per notification method: what went on the wire
    per = {}
    order = []
    for e in events:
        mid = e.get('method_id')
        if mid:
            if mid not in per:
                per[mid] = {'method_id': mid, 'method_name': methods[mid]['name'],
                            'type': methods[mid]['type'].lower(), 'calls': []}
                order.append(mid)
            if e['kind'] == 'send_result':
                per[mid]['result'] = 'sent' if e['result'] else 'failed'
            else:
                per[mid]['calls'].append({k: v for k, v in e.items() if k != 'method_id'})
    for x in REC.exceptions:
        if 'method_id' in x:
            per[x['method_id']]['exception'] = x['exception'] + ': ' + x['message']
    # Notification.to_json() values are in kafka_out (sent -> alarm-notifications, failed ->
    # retry-notifications, period 60 -> 60-seconds-notifications before sending)
    for k in order:
        out['notifications'].append(per[k])
    for o in out['kafka_out']:
        o['method_id'] = json.loads(o['value'])['id']
    # types that were dropped (not enabled)
    if valid and valid[0]['result'] and crash is None and sql and \
            sql[0]['args'][0] not in CONFIG['alarm_definitions_without_actions']:
        out['dropped_not_enabled'] = [m['id'] for m in METHODS
                                      if m['type'].lower() not in notifiers.configured_notifiers]
    return out


def read_lines(name):
    data = open(os.path.join(FIX, name), 'rb').read()
    assert data.endswith(b'\n')
    return data[:-1].split(b'\n')  # split on LF only: line 9 carries a raw U+2028


def dump(path, obj):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write('\n')


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith('.json'):
            os.remove(os.path.join(OUT, f))
    index = []
    by_slug = {}
    startup = None
    for name in ('alarm-transitions.jsonl', 'alarm-transitions-extra.jsonl'):
        for i, value in enumerate(read_lines(name), 1):
            slug, desc = CASES[(name, i)]
            by_slug[slug] = value
            st_ev, st_sql, crash = run_case(value, i - 1)
            if startup is None:
                startup = {'note': 'once per NotificationProcessor (i.e. per engine process) at start',
                           'events': st_ev, 'sql': st_sql}
            out = summarise(slug, desc, {'file': name, 'line': i}, value, REC.events, REC.sql, crash)
            dump(os.path.join(OUT, slug + '.json'), out)
            index.append({'case': slug, 'file': name, 'line': i, 'description': desc,
                          'expected': 'expected/%s.json' % slug})
    assert len(index) == len(CASES)

    # variants
    for vslug, (base, desc) in VARIANTS.items():
        overrides = {}
        if vslug == 'variant-email-no-grafana':
            overrides[('email_notifier', 'grafana_url')] = None
        if vslug == 'variant-keystone-webhook':
            overrides[('keystone', 'auth_required')] = True
        for (g, k), v in overrides.items():
            CONF.set_override(k, v, group=g)
        REC.reset()
        slack_notifier.SlackNotifier._raw_data_url_caches = []
        eng = new_engine([FakeMessage(by_slug[base], 0)])
        REC.events, REC.sql, REC.logs = [], [], []
        if vslug == 'variant-jira-existing-closed':
            REC.jira_search_result = [('MON-7', 'Closed')]
        if vslug == 'variant-slack-json-refused':
            REC.responder = slack_refusing_responder
        if vslug == 'variant-jira-rest':
            jira.JIRA = _REAL_JIRA
            REC.responder = lambda req: jira_rest_responder(req) if 'jira.example' in req.url else None
        if vslug == 'variant-http-500':
            REC.default_response = {'status': 500, 'content_type': 'text/plain', 'body': 'boom'}
        crash = None
        try:
            eng.run()
        except Exception as e:
            crash = {'exception': type(e).__name__, 'message': str(e)}
        out = summarise(vslug, desc, {'variant_of': base}, by_slug[base], REC.events, REC.sql, crash)
        if vslug == 'variant-jira-rest':
            jira.JIRA = FakeJIRA
            import importlib.metadata as md
            out['note'] = 'jira library %s; these requests depend on its version' % md.version('jira')
        if vslug == 'variant-slack-json-refused':
            out['slack_raw_data_url_cache_after'] = list(slack_notifier.SlackNotifier._raw_data_url_caches)
        dump(os.path.join(OUT, vslug + '.json'), out)
        index.append({'case': vslug, 'variant_of': base, 'description': desc,
                      'expected': 'expected/%s.json' % vslug})
        for (g, k), v in overrides.items():
            CONF.clear_override(k, group=g)

    dump(os.path.join(OUT, 'startup.json'), startup)
    dump(os.path.join(OUT, 'index.json'), index)
    print('wrote %d files to %s' % (len(index) + 2, OUT))


if __name__ == '__main__':
    main()
